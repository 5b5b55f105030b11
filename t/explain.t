#!/usr/bin/perl
# t/explain.t - `sluice explain`: a described transaction replayed against
# the configuration without a server; what it prints for each stage (the
# lists, each restriction, the table keys tried in access(5) order, what
# matched, the verdicts) and the reply the client would get.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice spew $SLUICE $CLEAN_MAIN);

BAIL_OUT("$SLUICE is not built") unless -x $SLUICE;

my $BASE = $CLEAN_MAIN
    . "plugin_directory = $SluiceConf::ROOT/build/plugins\n"
    . "mydestination = example.com\n"
    . "local_recipient_maps =\n"
    . "mynetworks = 127.0.0.0/8\n";

# A configuration directory with main.cf = $BASE + extra (TOPCONF: its
# conf/ directory), and tables in conf/ (those without a dot are built as
# hash: tables).
sub setup {
	my (%o) = @_;
	my $top = conf_dir(master => $o{master} // "smtp inet - - - - - smtpd\n");
	(my $main = $BASE . ($o{main} // '')) =~ s/TOPCONF/$top\/conf/g;
	spew("$top/conf/main.cf", $main);
	for my $t (keys %{ $o{tables} || {} }) {
		spew("$top/conf/$t", $o{tables}{$t});
		if ($t !~ /\./) {       # hash: tables get built
			my ($rc, $out, $err) = run_sluice($top, 'map', 'build', "conf/$t");
			die "map build $t: $err" if $rc;
		}
	}
	return $top;
}

sub replay {
	my ($top, @args) = @_;
	my ($rc, $out, $err) = run_sluice($top, 'explain', @args);
	$out =~ s/\Q$top\E/TOP/g;
	return ($rc, $out, $err);
}

# ---- a relay denial, the whole transcript --------------------------------
{
	my $top = setup();
	my ($rc, $out, $err) = replay($top, '--client', '192.0.2.7',
		'--helo', 'mail.example.net', '--sender', 'a@example.net',
		'--recipient', 'b@example.net');
	is($rc, 0, 'relay denial: exit 0');
	is($out, <<'EOT', 'relay denial: the transcript');
sluice explain: listener smtp (conf/master.cf:1), client unknown[192.0.2.7]
CONNECT from unknown[192.0.2.7]
  smtpd_client_restrictions: evaluated at RCPT (smtpd_delay_reject = yes)
EHLO mail.example.net
  smtpd_helo_restrictions: evaluated at RCPT (smtpd_delay_reject = yes)
MAIL FROM:<a@example.net>
  smtpd_sender_restrictions: evaluated at RCPT (smtpd_delay_reject = yes)
RCPT TO:<b@example.net>
  smtpd_client_restrictions: (empty)
  smtpd_helo_restrictions: (empty)
  smtpd_sender_restrictions: (empty)
  smtpd_relay_restrictions:
    permit_mynetworks
      unknown[192.0.2.7]: not in mynetworks
      -> DUNNO
    permit_sasl_authenticated
      not authenticated
      -> DUNNO
    defer_unauth_destination
      b@example.net: default domain
      -> DEFER
RCPT: 454 4.7.1 <b@example.net>: Relay access denied
EOT
	is($err, '', 'relay denial: nothing on stderr');
}

# ---- reject_unauth_destination, and a local recipient accepted -------------
{
	my $top = setup(main => "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.7',
		'--recipient', 'b@example.net', '--recipient', 'c@example.com');
	like($out, qr{^RCPT: 554 5\.7\.1 <b\@example\.net>: Relay access denied$}m,
	     'reject_unauth_destination: 554 5.7.1');
	like($out, qr{^RCPT TO:<c\@example\.com>\n(?:  .*\n)*?      c\@example\.com: local domain\n      -> DUNNO\n(?:  .*\n)*RCPT: accepted$}m,
	     'the second recipient, in mydestination, is accepted');
	like($out, qr{^MAIL FROM:<>$}m, 'no --sender: the null sender');
}

# ---- permit_mynetworks ------------------------------------------------------
{
	my $top = setup();
	my ($rc, $out) = replay($top, '--client', '127.0.0.1', '--recipient', 'b@example.net');
	like($out, qr{^    permit_mynetworks\n      unknown\[127\.0\.0\.1\]: in mynetworks \(127\.0\.0\.0/8\)\n      -> OK\n}m,
	     'permit_mynetworks: in mynetworks, OK');
	like($out, qr{\nRCPT: accepted\n\z}, 'permit_mynetworks: accepted');
	unlike($out, qr{permit_sasl_authenticated}, 'the relay list ends at the OK');
}

# ---- access tables: the keys in access(5) order, what matched ----------------
{
	my $top = setup(
		main => "smtpd_client_restrictions = check_client_access hash:TOPCONF/clients\n"
		      . "smtpd_sender_restrictions = check_sender_access hash:TOPCONF/senders\n",
		tables => { clients => "192.0.2.66 REJECT listed here\n",
			    senders => "example.org REJECT Go away\nfriend\@ OK\n" });

	my ($rc, $out) = replay($top, '--client', '192.0.2.66', '--client-name', 'mx.example.net',
		'--sender', 'someone@mail.example.org', '--recipient', 'b@example.com');
	like($out, qr{^    check_client_access hash:TOP/conf/clients\n      key mx\.example\.net: not found\n      key example\.net: not found\n      key net: not found\n      key 192\.0\.2\.66: found: REJECT listed here\n}m,
	     'client: the name, its parents, then the address; the hit');
	like($out, qr{^RCPT: 554 5\.7\.1 <mx\.example\.net\[192\.0\.2\.66\]>: Client host rejected: listed here$}m,
	     'client: the access table reply');
	unlike($out, qr{smtpd_sender_restrictions:\n    check_sender_access}, 'a reject ends the stage');

	($rc, $out) = replay($top, '--client', '192.0.2.7',
		'--sender', 'someone@mail.example.org', '--recipient', 'b@example.com');
	like($out, qr{^    check_sender_access hash:TOP/conf/senders\n      key someone\@mail\.example\.org: not found\n      key mail\.example\.org: not found\n      key example\.org: found: REJECT Go away\n}m,
	     'sender: address, domain, parent domain; the hit');
	like($out, qr{^RCPT: 554 5\.7\.1 <someone\@mail\.example\.org>: Sender address rejected: Go away$}m,
	     'sender: the access table reply');

	($rc, $out) = replay($top, '--client', '192.0.2.7',
		'--sender', 'friend@elsewhere.example', '--recipient', 'b@example.com');
	like($out, qr{key friend\@elsewhere\.example: not found\n      key elsewhere\.example: not found\n      key example: not found\n      key friend\@: found: OK\n}m,
	     'sender: user@ comes last');
	like($out, qr{\nRCPT: accepted\n\z}, 'user@ OK: accepted');
}

# ---- restriction classes ------------------------------------------------------
{
	my $top = setup(
		main => "smtpd_restriction_classes = strict, friendly\n"
		      . "strict = reject_non_fqdn_sender, reject\n"
		      . "friendly = permit\n"
		      . "smtpd_recipient_restrictions = check_sender_access inline:{ nobody\@example.net=strict, pal\@example.net=friendly }\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.7',
		'--sender', 'nobody@example.net', '--recipient', 'b@example.com');
	like($out, qr{check_sender_access inline:.*: strict\n}m, 'the table names the class');
	like($out, qr{^    reject_non_fqdn_sender\n(?:      .*\n)*?      -> DUNNO\n    reject\n}m,
	     'the class is evaluated: its restrictions in order');
	like($out, qr{^RCPT: 554 5\.7\.1 <b\@example\.com>: Recipient address rejected: Access denied$}m,
	     'the class rejects');

	($rc, $out) = replay($top, '--client', '192.0.2.7',
		'--sender', 'pal@example.net', '--recipient', 'b@example.com');
	like($out, qr{\nRCPT: accepted\n\z}, 'the other class permits');
}

# ---- smtpd_delay_reject = no: the lists run at their own commands ---------------
{
	my $top = setup(main => "smtpd_delay_reject = no\n"
			      . "smtpd_client_restrictions = check_client_access inline:{ 192.0.2.66=REJECT }\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.66', '--helo', 'h.example',
		'--recipient', 'b@example.com');
	like($out, qr{^CONNECT from unknown\[192\.0\.2\.66\]\n  smtpd_client_restrictions:\n    check_client_access inline:}m,
	     'delay_reject = no: the client list runs at CONNECT');
	like($out, qr{\nCONNECT: 554 5\.7\.1 <unknown\[192\.0\.2\.66\]>: Client host rejected: Access denied\n\z},
	     'delay_reject = no: the CONNECT reply ends the replay');

	($rc, $out) = replay($top, '--client', '192.0.2.7', '--helo', 'h.example',
		'--recipient', 'b@example.com');
	like($out, qr{\nCONNECT: accepted\nEHLO h\.example\n  smtpd_helo_restrictions: \(empty\)\nEHLO: accepted\nMAIL FROM:<>\n  smtpd_sender_restrictions: \(empty\)\nMAIL: accepted\nRCPT TO:<b\@example\.com>\n  smtpd_relay_restrictions:\n}m,
	     'delay_reject = no: each list at its command, only relay and recipient at RCPT');
}

# ---- --service: a listener's -o overrides; --sasl-user -------------------------
{
	my $top = setup(master => "smtp inet - - - - - smtpd\n"
			. "submission inet - - - - - smtpd\n"
			. "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n");
	my ($rc, $out) = replay($top, '--service', 'submission', '--client', '192.0.2.7',
		'--sasl-user', 'alice', '--recipient', 'b@example.net');
	like($out, qr{^sluice explain: listener submission \(conf/master\.cf:2\), client unknown\[192\.0\.2\.7\]$}m,
	     '--service picks the listener');
	like($out, qr{^AUTH PLAIN: logged in as alice$}m, 'the AUTH login is shown');
	like($out, qr{^    permit_sasl_authenticated\n(?:      .*\n)*?      -> OK\n}m,
	     'permit_sasl_authenticated permits alice');
	like($out, qr{\nRCPT: accepted\n\z}, 'alice may relay');

	($rc, $out) = replay($top, '--service', 'submission', '--client', '192.0.2.7',
		'--recipient', 'b@example.net');
	like($out, qr{^RCPT: 554 5\.7\.1 <b\@example\.net>: Recipient address rejected: Access denied$}m,
	     'without AUTH the listener rejects');

	($rc, $out, my $err) = replay($top, '--service', 'nosuch', '--client', '192.0.2.7',
		'--recipient', 'b@example.net');
	is($rc, 1, 'an unknown service: exit 1');
	is($err, qq{sluice explain: master.cf has no smtpd service "nosuch"; name one of: smtp submission\n},
	   'an unknown service: the services there');
}

# ---- address checks the session makes before the lists ---------------------------
{
	my $top = setup();
	my ($rc, $out) = replay($top, '--client', '192.0.2.7', '--recipient', 'user%elsewhere.example@example.com');
	like($out, qr{sender-specified routing: not an authorized destination\n.*\nRCPT: 454 4\.7\.1 <user%elsewhere\.example\@example\.com>: Relay access denied\n\z}s,
	     'sender-specified routing through a local domain is no authorized destination for an untrusted client');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--recipient', '"user@elsewhere.example"@example.com');
	like($out, qr{\nRCPT: 454 4\.7\.1 <user\@elsewhere\.example\@example\.com>: Relay access denied\n\z},
	     '... a quoted one neither (the reply names the address as Postfix\'s, unquoted)');
	($rc, $out) = replay($top, '--client', '127.0.0.1', '--recipient', 'user%elsewhere.example@example.com');
	like($out, qr{permit_mynetworks\n.*\nRCPT: accepted\n\z}s,
	     'from mynetworks the lists decide, as in the session (Postfix lets permit_mynetworks pass it)');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--recipient', 'user@exa%mple.com');
	like($out, qr{\nRCPT TO:<user\@exa%mple\.com>\nRCPT: 501 5\.1\.3 Bad recipient address syntax\n\z},
	     'a recipient domain that is no host name: 501 5.1.3 before any list');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--sender', 'a@127.0.0.1', '--recipient', 'b@example.com');
	like($out, qr{\nMAIL FROM:<a\@127\.0\.0\.1>\nMAIL: 501 5\.1\.7 Bad sender address syntax\n\z},
	     'a sender domain that is no host name: 501 5.1.7, the replay ends');
}

# ---- --data: the DATA and end-of-data lists, recipients counted ------------------
{
	my $top = setup(main => "smtpd_data_restrictions = reject_multi_recipient_bounce\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.7', '--data',
		'--recipient', 'a@example.com', '--recipient', 'b@example.com');
	like($out, qr{\nDATA\n  smtpd_data_restrictions:\n    reject_multi_recipient_bounce\n      MAIL FROM:<> with 2 recipients\n      -> REJECT\nDATA: 550 5\.5\.3 <DATA>: Data command rejected: Multi-recipient bounce\n\z},
	     '--data: a bounce to two recipients is rejected at DATA');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--data', '--sender', 'x@example.net',
		'--recipient', 'a@example.com');
	like($out, qr{\nDATA: accepted\nEND-OF-MESSAGE\n  smtpd_end_of_data_restrictions: \(empty\)\nEND-OF-MESSAGE: accepted\n\z},
	     '--data: accepted through the end of the message');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--data', '--recipient', 'a@example.net');
	like($out, qr{\nDATA: 554 5\.5\.1 Error: no valid recipients\n\z}, '--data: no recipient accepted');
}

# ---- smtpd_helo_required: MAIL without EHLO ----------------------------------------
{
	my $top = setup(main => "smtpd_helo_required = yes\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.7', '--recipient', 'a@example.com');
	like($out, qr{\nMAIL FROM:<>\nMAIL: 503 5\.5\.1 Error: send HELO/EHLO first\n\z},
	     'smtpd_helo_required: MAIL without EHLO is refused, no RCPT');
}

# ---- usage and configuration errors -------------------------------------------------
{
	my $top = setup();
	my ($rc, $out, $err) = run_sluice($top, 'explain', '--recipient', 'b@example.com');
	is($rc, 2, 'no --client: exit 2');
	like($err, qr{^sluice explain: --client and --recipient are required\nusage: sluice}, 'no --client: says so');
	($rc, $out, $err) = run_sluice($top, 'explain', '--client', 'mail.example.net', '--recipient', 'b@example.com');
	is($rc, 2, 'a client name as --client: exit 2');
	like($err, qr{^sluice explain: --client "mail\.example\.net" is not an IPv4 or IPv6 address; give the address, and the name with --client-name\n}, 'a client name as --client: says what to do');

	$top = setup(main => "smtpd_client_restrictions = reject_bogus_thing\n");
	($rc, $out, $err) = run_sluice($top, 'explain', '--client', '192.0.2.7', '--recipient', 'b@example.com');
	is($rc, 1, 'a broken configuration: exit 1');
	like($err, qr{^conf/main\.cf:\d+: unknown restriction reject_bogus_thing}m, 'a broken configuration: the problem');
	is($out, '', 'a broken configuration: no replay');
}

# ---- DNS: the replay waits for the answers (dnsmasq on a loopback port) ----------
{
	BAIL_OUT('dnsmasq is not installed: run scripts/install-deps') unless -x '/usr/sbin/dnsmasq';
	require DnsTest;
	# a bound UDP socket nobody reads: queries forwarded there time out
	my $silent_port = DnsTest::silent_udp_port();
	my $port = DnsTest::start_dnsmasq('--local=/test/',
		"--server=/timeout.test/127.0.0.1#$silent_port",
		'--mx-host=mail.example.test,mx.mail.example.test,10');
	ok($port, 'dnsmasq listens');
	my $top = setup(main => "dns_servers = 127.0.0.1:$port\nsluice_smtpd_dns_timeout = 2s\n"
			      . "smtpd_sender_restrictions = reject_unknown_sender_domain\n");
	my ($rc, $out) = replay($top, '--client', '192.0.2.7', '--sender', 'a@mail.example.test',
		'--recipient', 'b@example.com');
	like($out, qr{^    reject_unknown_sender_domain\n(?:      .*\n)*?      -> DUNNO\n}m,
	     'a sender domain with an MX record passes');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--sender', 'a@nowhere.test',
		'--recipient', 'b@example.com');
	like($out, qr{^RCPT: 450 4\.1\.8 <a\@nowhere\.test>: Sender address rejected: Domain not found$}m,
	     'a sender domain that does not exist: the reply after the lookup');
	($rc, $out) = replay($top, '--client', '192.0.2.7', '--sender', 'a@x.timeout.test',
		'--recipient', 'b@example.com');
	like($out, qr{^RCPT: 450 4\.1\.8 <a\@x\.timeout\.test>: Sender address rejected: Domain not found$}m,
	     'a DNS timeout: a temporary reply once sluice_smtpd_dns_timeout passes');
}

done_testing();
