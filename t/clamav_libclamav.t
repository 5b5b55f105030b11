#!/usr/bin/perl
# clamav_libclamav.t - the bundled clamav plugin in libclamav mode
# (sluice_plugins = clamav), with a signature database the test writes
# (no download): EICAR and a custom body signature (.ndb), and the MD5 of
# a custom attached file (.hdb).
#  - a clean message is queued with X-Virus-Scanned and X-Virus-Status:
#    Clean (clamav_add_header = yes);
#  - EICAR in the body, EICAR inside a zip attachment, the custom .ndb
#    string in a base64 attachment and the .hdb file are each rejected
#    with "550 5.7.1 Virus found: NAME" (the name from the engine), logged
#    as "ID: clamav: reject: END-OF-MESSAGE from host[ip]: 5.7.1 Virus
#    found: NAME; from=<..> to=<..>", and nothing is queued;
#  - sluice reload picks up a signature added to the database;
#  - clamav_action = hold puts the infected message in hold/;
#  - clamav_action = discard accepts and drops it;
#  - clamav_action = tag queues it with X-Virus-Status: Infected (NAME);
#  - a message over clamav_max_scan_size is accepted unscanned, logged;
#  - a missing database: clamav_failure_action = tempfail answers 451
#    4.7.1 and queues nothing; accept queues the message unscanned.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::MD5 qw(md5_hex);
use File::Temp qw(tempdir);
use Test::More;
use MilterPeers;
use SluiceTest;

my $EICAR_NAME = 'Eicar-Signature';
my $NDB_NAME = 'Sluice.Test.Ndb';
my $NDB_STRING = 'sluice-clamav-plugin-ndb-marker';
my $HDB_NAME = 'Sluice.Test.Hdb';
my $HDB_FILE = "this whole file is known by its md5 to the sluice clamav test\n";
my $NEW_NAME = 'Sluice.Test.Reloaded';
my $NEW_STRING = 'sluice-clamav-plugin-added-after-reload';
# libclamav names signatures from a database other than ClamAV's signed
# ones NAME.UNOFFICIAL, as clamd and clamav-milter report them too.
my $UNOFFICIAL = qr/\.UNOFFICIAL/;

my $db = tempdir('clamav-db-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $db;
MilterPeers::spew("$db/sluice-test.ndb",
		  MilterPeers::ndb([$EICAR_NAME, unpack('H*', MilterPeers::eicar())],
				   [$NDB_NAME, unpack('H*', $NDB_STRING)]));
MilterPeers::spew("$db/sluice-test.hdb",
		  md5_hex($HDB_FILE) . ':' . length($HDB_FILE) . ":$HDB_NAME\n");

my %msg = (
	MilterPeers::virus_messages(),
	ndb => MilterPeers::with_attachment('ndb', 'note.txt', 'text/plain', "a file with $NDB_STRING inside\n"),
	hdb => MilterPeers::with_attachment('hdb', 'known.bin', 'application/octet-stream', $HDB_FILE),
	new => "From: sender\@example.org\nTo: rcpt\@example.net\nSubject: new\n\n$NEW_STRING\n",
);

my $t = SluiceTest->new(start => 0, main => {
	sluice_plugins => 'clamav',
	sluice_builtin_plugins => '',      # this test needs no other filter
	clamav_database_directory => $db,
	clamav_add_header => 'yes',
	smtpd_peername_lookup => 'no' });
my $mark = 0;
$t->start;

# Both workers loaded the engine (the init line of each).
sub engines_loaded {
	my ($from, $re) = @_;
	$re //= qr/clamav: libclamav \S+: \d+ signatures from /;
	return SluiceTest::wait_until(sub {
		my $n = () = $t->log_text($from) =~ /$re/g;
		return $n >= $t->config('sluice_smtpd_workers');
	}, 30);
}
ok(engines_loaded($mark), 'each worker loads the signature database once')
    or diag($t->log_text);

sub send_msg {
	my ($name) = @_;
	my $c = SluiceTest::Client->new(port => $t->port) or return (undef, "connect: $!");
	return $c->send_message($msg{$name}, from => 'sender@example.org', to => ['rcpt@example.net']);
}

# ---- clean --------------------------------------------------------------

my ($code, $text) = send_msg('clean');
is($code, 250, 'a clean message is accepted') or diag($text, $t->log_text);
my ($id) = ($text // '') =~ /queued as (\S+)/;
my $queued = MilterPeers::sluice_message($t, $id);
like($queued, qr/^X-Virus-Status: Clean$/m, 'X-Virus-Status: Clean in the queued message');
like($queued, qr/^X-Virus-Scanned: ClamAV \S+ \(sluice clamav\) at mx\.example\.test$/m,
     'and X-Virus-Scanned naming the engine and the host');

# ---- infected -----------------------------------------------------------

my %virus = (eicar => $EICAR_NAME, zip => $EICAR_NAME, ndb => $NDB_NAME, hdb => $HDB_NAME);
my %what = (eicar => 'EICAR in the body', zip => 'a zip holding the EICAR file',
	    ndb => 'the custom .ndb signature in an attachment',
	    hdb => 'the custom .hdb file as an attachment');
for my $name (qw(eicar zip ndb hdb)) {
	my @before = $t->queue_files;
	$mark = $t->log_mark;
	($code, $text) = send_msg($name);
	like($text // '', qr/^550 5\.7\.1 Virus found: \Q$virus{$name}\E$UNOFFICIAL$/,
	     "$what{$name}: 550 5.7.1 Virus found: $virus{$name}") or diag($t->log_text($mark));
	ok($t->wait_log(qr/: clamav: reject: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: 5\.7\.1 Virus found: \Q$virus{$name}\E$UNOFFICIAL; from=<sender\@example\.org> to=<rcpt\@example\.net>$/,
			10, from => $mark),
	   "$what{$name}: logged as clamav: reject: END-OF-MESSAGE with the name")
	    or diag($t->log_text($mark));
	is_deeply([$t->queue_files], \@before, "$what{$name}: nothing is queued");
}

# ---- reload picks up a new database ---------------------------------------

($code, $text) = send_msg('new');
is($code, 250, 'a signature not yet in the database: accepted');
MilterPeers::spew("$db/sluice-added.ndb", "$NEW_NAME:0:*:" . unpack('H*', $NEW_STRING) . "\n");
$mark = $t->log_mark;
$t->reload;
ok(engines_loaded($mark), 'reload: the fresh workers load the database again');
($code, $text) = send_msg('new');
like($text // '', qr/^550 5\.7\.1 Virus found: \Q$NEW_NAME\E$UNOFFICIAL$/,
     'after sluice reload the added signature is found') or diag($t->log_text($mark));

# ---- hold, tag ----------------------------------------------------------

$t->set_main(clamav_action => 'hold');
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark);
($code, $text) = send_msg('eicar');
is($code, 250, 'clamav_action = hold: the message is accepted') or diag($text);
($id) = ($text // '') =~ /queued as (\S+)/;
ok(defined $id && SluiceTest::wait_until(sub { grep { $_ eq $id } $t->queue_files('hold') }, 10),
   'and put in hold/') or diag(join ' ', $t->queue_files('hold'));
ok($t->wait_log(qr/\Q$id\E: clamav: hold: END-OF-MESSAGE from \S+: Virus found: \Q$EICAR_NAME\E$UNOFFICIAL; from=<sender\@example\.org>/,
		10, from => $mark), 'hold is logged with the virus name');

$t->set_main(clamav_action => 'tag');
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark);
($code, $text) = send_msg('eicar');
is($code, 250, 'clamav_action = tag: the message is accepted') or diag($text);
($id) = ($text // '') =~ /queued as (\S+)/;
like(MilterPeers::sluice_message($t, $id), qr/^X-Virus-Status: Infected \(\Q$EICAR_NAME\E$UNOFFICIAL\)$/m,
     'with X-Virus-Status: Infected (NAME)');

$t->set_main(clamav_action => 'discard');
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark);
my @incoming = $t->queue_files;
my @held = $t->queue_files('hold');
($code, $text) = send_msg('eicar');
is($code, 250, 'clamav_action = discard: the client is told the message is accepted') or diag($text);
ok($t->wait_log(qr/: clamav: discard: END-OF-MESSAGE from \S+: Virus found: \Q$EICAR_NAME\E$UNOFFICIAL;/,
		10, from => $mark), 'discard is logged with the virus name') or diag($t->log_text($mark));
is_deeply([[$t->queue_files], [$t->queue_files('hold')]], [\@incoming, \@held],
	  'and nothing is queued or held');

# ---- clamav_max_scan_size ---------------------------------------------------

$t->set_main(clamav_action => 'reject', clamav_max_scan_size => 100);
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark);
($code, $text) = send_msg('eicar');
is($code, 250, 'a message over clamav_max_scan_size is accepted unscanned (as clamav-milter\'s MaxFileSize)')
    or diag($text);
ok($t->wait_log(qr/: clamav: not scanned: larger than clamav_max_scan_size \(100 bytes\)/, 10, from => $mark),
   'and the log says why it was not scanned') or diag($t->log_text($mark));
$t->set_main(clamav_max_scan_size => undef);

# ---- database missing ---------------------------------------------------

$t->set_main(clamav_action => 'reject', clamav_database_directory => "$db/missing");
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark, qr/clamav: .*cannot load the signature database/);
my @before = $t->queue_files;
($code, $text) = send_msg('clean');
like($text // '', qr/^451 4\.7\.1 /, 'database missing: tempfail (451 4.7.1)') or diag($t->log_text($mark));
is_deeply([$t->queue_files], \@before, 'database missing: nothing is queued');
ok($t->wait_log(qr/warning: \S+: clamav: scan failed: no signature database loaded; message deferred/, 10, from => $mark),
   'the deferral is logged with its reason') or diag($t->log_text($mark));

$t->set_main(clamav_failure_action => 'accept');
$mark = $t->log_mark;
$t->reload;
engines_loaded($mark, qr/clamav: .*cannot load the signature database/);
($code, $text) = send_msg('clean');
is($code, 250, 'database missing, clamav_failure_action = accept: accepted') or diag($text);

done_testing;
