#!/usr/bin/perl
# t/check_warnings.t - the semantic warnings of `sluice check`: a
# configuration that loads but is probably not what the admin meant
# (public mynetworks, an open relay, restrictions that are never reached,
# hash: tables never built or stale, pattern tables with errors).
# Exact messages, exit status (0 for warnings only), nothing on stdout.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice spew $SLUICE $CLEAN_MAIN);

BAIL_OUT("$SLUICE is not built") unless -x $SLUICE;

my $M = $CLEAN_MAIN;    # two lines: queue_directory, mail_owner
my $ACCESS = "sluice_plugins = access\nplugin_directory = $SluiceConf::ROOT/build/plugins\n";

# name, main.cf, master.cf (undef: the clean one), expected stderr, status,
# set-up (gets the top directory)
my @cases = (
	# ---- mynetworks ----
	['loopback and private networks are fine',
	 "$M" . "mynetworks = 127.0.0.0/8 [::1]/128 10.0.0.0/8 192.168.0.0/16 [fd00::]/8\n",
	 undef, '', 0],

	['a small public network is fine',
	 "$M" . "mynetworks = 127.0.0.0/8 198.41.0.0/24 [2a01:4f8:1::]/48\n",
	 undef, '', 0],

	['0.0.0.0/0: the size and the public part',
	 "$M" . "mynetworks = 127.0.0.0/8, 0.0.0.0/0\n", undef,
	 qq{warning: conf/main.cf:3: mynetworks entry 0.0.0.0/0 includes public address space (4294967296 addresses, 3702258688 of them public), and every client there is trusted (permit_mynetworks relays its mail); list only your own networks (sluice_check_mynetworks_prefix = 24 allows public networks up to /24)\n}
	 . qq{warning: conf/main.cf:3: smtpd_relay_restrictions permits every client with "permit_mynetworks (mynetworks holds every address)" before any reject_unauth_destination, and smtpd_recipient_restrictions does not refuse relaying either, so this server relays mail for everyone; put reject_unauth_destination (or defer_unauth_destination) before it\n}, 0],

	['a public /16, partly private /8 is not',
	 "$M" . "mynetworks = 10.0.0.0/8 8.8.0.0/16\n", undef,
	 qq{warning: conf/main.cf:3: mynetworks entry 8.8.0.0/16 includes public address space (65536 addresses, 65536 of them public), and every client there is trusted (permit_mynetworks relays its mail); list only your own networks (sluice_check_mynetworks_prefix = 24 allows public networks up to /24)\n}, 0],

	['the limit is a parameter',
	 "$M" . "mynetworks = 8.8.0.0/16\nsluice_check_mynetworks_prefix = 16\n", undef, '', 0],

	['IPv6: sizes as powers of two',
	 "$M" . "mynetworks = [2001:db8::]/32 [2a00::]/12\n", undef,
	 qq{warning: conf/main.cf:3: mynetworks entry [2a00::]/12 includes public address space (2^116 addresses, 2^116 of them public), and every client there is trusted (permit_mynetworks relays its mail); list only your own networks (sluice_check_mynetworks_prefix6 = 48 allows public networks up to /48)\n}, 0],

	['a listener -o mynetworks is reported at its master.cf line',
	 $M, "127.0.0.1:2525 inet - - - - - smtpd\n127.0.0.1:2526 inet - - - - - smtpd\n  -o mynetworks=172.0.0.0/8\n",
	 qq{warning: conf/master.cf:2: mynetworks entry 172.0.0.0/8 includes public address space (16777216 addresses, 15728640 of them public), and every client there is trusted (permit_mynetworks relays its mail); list only your own networks (sluice_check_mynetworks_prefix = 24 allows public networks up to /24)\n}, 0],

	# ---- relay control ----
	['the default relay restrictions are fine', $M, undef, '', 0],

	['a class that permits, before reject_unauth_destination',
	 "$M" . "smtpd_restriction_classes = friends\nfriends = permit\n"
	 . "smtpd_relay_restrictions = friends, reject_unauth_destination\n", undef,
	 qq{warning: conf/main.cf:5: smtpd_relay_restrictions permits every client with "class friends (permit)" before any reject_unauth_destination, and smtpd_recipient_restrictions does not refuse relaying either, so this server relays mail for everyone; put reject_unauth_destination (or defer_unauth_destination) before it\n}, 0],

	['an access table that says OK to everyone',
	 "$M$ACCESS" . "smtpd_relay_restrictions = check_client_access static:OK, reject_unauth_destination\n", undef,
	 qq{warning: conf/main.cf:5: smtpd_relay_restrictions permits every client with "check_client_access static:OK" before any reject_unauth_destination, and smtpd_recipient_restrictions does not refuse relaying either, so this server relays mail for everyone; put reject_unauth_destination (or defer_unauth_destination) before it\n}, 0],

	['the recipient list still guards: no relay warning',
	 "$M" . "smtpd_restriction_classes = friends\nfriends = permit\n"
	 . "smtpd_relay_restrictions = friends\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n",
	 undef, '', 0],

	['warn_if_reject reject_unauth_destination does not guard',
	 "$M" . "smtpd_relay_restrictions = warn_if_reject reject_unauth_destination, permit\n", undef,
	 qq{conf/main.cf:3: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer or defer_if_permit (an open relay is refused)\n}, 1],

	# ---- never reached ----
	['restrictions after reject',
	 "$M" . "smtpd_client_restrictions = permit_mynetworks, reject, reject_unknown_client_hostname\n", undef,
	 qq{warning: conf/main.cf:3: restriction reject_unknown_client_hostname after reject in smtpd_client_restrictions is never evaluated; remove it or move reject to the end\n}, 0],

	['restrictions after permit, in a class',
	 "$M" . "smtpd_restriction_classes = strict\nstrict = permit, reject_non_fqdn_sender\n"
	 . "smtpd_sender_restrictions = strict\n", undef,
	 qq{warning: conf/main.cf:4: restriction reject_non_fqdn_sender after permit in strict is never evaluated; remove it or move permit to the end\n}, 0],

	['permit at the end is fine',
	 "$M" . "smtpd_client_restrictions = permit_mynetworks, reject_unknown_client_hostname, permit\n",
	 undef, '', 0],

	# ---- hash: tables ----
	['a hash: table never built',
	 "$M" . "transport_maps = hash:TOP/conf/transport\n", undef,
	 qq{warning: conf/main.cf:3: hash:TOP/conf/transport in transport_maps was never built (TOP/conf/transport.lmdb does not exist); run "sluice map build TOP/conf/transport"\n}, 0,
	 sub { spew("$_[0]/conf/transport", "example.com smtp:[192.0.2.1]\n") }],

	['a hash: table built and up to date',
	 "$M" . "transport_maps = hash:TOP/conf/transport\n", undef, '', 0,
	 sub { spew("$_[0]/conf/transport", "example.com smtp:[192.0.2.1]\n");
	       build_map("$_[0]/conf/transport", -1) }],

	['a hash: table older than its source',
	 "$M" . "transport_maps = hash:TOP/conf/transport\n", undef,
	 qq{warning: conf/main.cf:3: hash:TOP/conf/transport in transport_maps is older than its source TOP/conf/transport, so lookups do not see the latest changes; run "sluice map build TOP/conf/transport"\n}, 0,
	 sub { spew("$_[0]/conf/transport", "example.com smtp:[192.0.2.1]\n");
	       build_map("$_[0]/conf/transport", 60) }],

	['an alias table is built with -a',
	 "$M" . "alias_maps = hash:TOP/conf/aliases\n", undef,
	 qq{warning: conf/main.cf:3: hash:TOP/conf/aliases in alias_maps was never built (TOP/conf/aliases.lmdb does not exist); run "sluice map build -a TOP/conf/aliases"\n}, 0],

	['a hash: table in a restriction list: the compiler says it once',
	 "$M$ACCESS" . "smtpd_client_restrictions = check_client_access hash:TOP/conf/clients\n", undef,
	 qq{conf/main.cf:5: restriction check_client_access in smtpd_client_restrictions: hash:TOP/conf/clients: cannot open TOP/conf/clients.lmdb: No such file or directory; run "sluice map build TOP/conf/clients"\n}, 1],

	['a stale hash: table in a listener -o restriction list',
	 "$M$ACCESS", "127.0.0.1:2525 inet - - - - - smtpd\n  -o smtpd_client_restrictions=check_client_access,hash:TOP/conf/clients\n",
	 qq{warning: conf/master.cf:1: hash:TOP/conf/clients in smtpd_client_restrictions is older than its source TOP/conf/clients, so lookups do not see the latest changes; run "sluice map build TOP/conf/clients"\n}, 0,
	 sub { spew("$_[0]/conf/clients", "192.0.2.1 REJECT\n");
	       build_map("$_[0]/conf/clients", 60) }],

	# ---- pattern tables ----
	['every error of a pattern table, with its line',
	 "$M" . "virtual_alias_maps = pcre:TOP/conf/virtual.pcre\n", undef,
	 qq{TOP/conf/virtual.pcre:2: error in regex at offset 4: missing closing parenthesis; fix the pattern\n}
	 . qq{TOP/conf/virtual.pcre:4: unrecognized request "this is not a rule"; write /pattern/flags result, if /pattern/ or endif\n}, 1,
	 sub { spew("$_[0]/conf/virtual.pcre",
		    "/^ok\@/ ok\@example.com\n/^a(b/ x\@example.com\n# fine\nthis is not a rule\n") }],

	['a table that cannot be read: at the parameter naming it',
	 "$M" . "virtual_alias_maps = pcre:TOP/conf/nonexistent.pcre\n", undef,
	 qq{conf/main.cf:3: in virtual_alias_maps: pcre:TOP/conf/nonexistent.pcre: cannot read TOP/conf/nonexistent.pcre: No such file or directory; check the file name and its permissions\n}, 1],

	['a regexp table error, in a restriction class',
	 "$M$ACCESS" . "smtpd_restriction_classes = cls\ncls = check_sender_access regexp:TOP/conf/s.regexp\n"
	 . "smtpd_sender_restrictions = cls\n", undef,
	 qq{conf/main.cf:6: restriction check_sender_access in restriction class cls: TOP/conf/s.regexp:2: error in regex "a(": Unmatched ( or \\(; fix the pattern\n}, 1,
	 sub { spew("$_[0]/conf/s.regexp", "/ok/ OK\n/a(/ REJECT\n") }],

	['virtual_alias_maps is built without -a',
	 "$M" . "virtual_alias_maps = hash:TOP/conf/virtual\n", undef,
	 qq{warning: conf/main.cf:3: hash:TOP/conf/virtual in virtual_alias_maps was never built (TOP/conf/virtual.lmdb does not exist); run "sluice map build TOP/conf/virtual"\n}, 0],

	['a cidr table error, in a restriction list',
	 "$M$ACCESS" . "smtpd_client_restrictions = check_client_access cidr:TOP/conf/clients.cidr\n", undef,
	 qq{conf/main.cf:5: restriction check_client_access in smtpd_client_restrictions: TOP/conf/clients.cidr:2: bad address pattern: "300.1.2.0/24"; write an IPv4 or IPv6 address, or address/prefix\n}, 1,
	 sub { spew("$_[0]/conf/clients.cidr", "192.0.2.0/24 OK\n300.1.2.0/24 REJECT\n") }],

	['tables that load are fine',
	 "$M$ACCESS" . "smtpd_client_restrictions = check_client_access cidr:TOP/conf/clients.cidr, check_client_access pcre:TOP/conf/c.pcre\n",
	 undef, '', 0,
	 sub { spew("$_[0]/conf/clients.cidr", "192.0.2.0/24 OK\n");
	       spew("$_[0]/conf/c.pcre", "/^mail\\./ OK\n") }],
);

# sluice map build, then move the source's time `ahead` seconds from the
# table's (negative: the source is older).
sub build_map {
	my ($path, $ahead) = @_;
	my $pid = fork // die;
	if (!$pid) {
		open STDOUT, '>', '/dev/null';
		open STDERR, '>', '/dev/null';
		exec $SLUICE, 'map', 'build', $path;
		exit 127;
	}
	waitpid $pid, 0;
	die "sluice map build $path failed" if $?;
	my $t = (stat "$path.lmdb")[9];
	utime $t + $ahead, $t + $ahead, $path or die "$path: $!";
}

for my $c (@cases) {
	my ($name, $main, $master, $want, $status, $setup) = @$c;
	my $top = conf_dir();
	for ($main, $master, $want) {
		s/TOP/$top/g if defined;
	}
	spew("$top/conf/main.cf", $main);
	spew("$top/conf/master.cf", $master) if defined $master;
	$setup->($top) if $setup;
	my ($rc, $out, $err) = run_sluice($top, 'check');
	# The restriction compiler opens its tables with map_open(), which
	# logs a stale table's warning as a log line: not this test's subject.
	$err =~ s/^\w{3} [ \d]\d [\d:]{8} \S+ sluice\[\d+\]: warning: hash:.*is older than.*\n//mg;
	is($err, $want, "$name: message");
	is($rc, $status, "$name: exit $status");
	is($out, '', "$name: nothing on stdout");
}

done_testing();
