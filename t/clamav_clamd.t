#!/usr/bin/perl
# clamav_clamd.t - the bundled clamav plugin in clamd mode
# (clamav_mode = clamd): the message goes to a real clamd, started by the
# test on a unix socket with a signature database the test writes
# (MilterPeers::Clamd: EICAR and a custom signature; no download).
#  - a clean message is queued, with X-Virus-Status: Clean;
#  - EICAR in the body and a zip attachment holding EICAR are rejected
#    with "550 5.7.1 Virus found: NAME" (the name clamd answers), logged
#    as "ID: clamav: reject: END-OF-MESSAGE ...", nothing queued;
#  - the same over TCP (clamav_clamd_socket = inet:127.0.0.1:PORT; the
#    test's clamd listens there too), picked up by sluice reload;
#  - clamd down: clamav_failure_action = tempfail answers 451 4.7.1 and
#    the log names the socket error.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use MilterPeers;
use SluiceTest;

my $why = MilterPeers::Clamd->unavailable;
BAIL_OUT($why) if $why;

# MilterPeers' clamd, listening on a TCP port as well as its unix socket.
package ClamdTcp {
	our @ISA = ('MilterPeers::Clamd');
	sub spawn {
		my ($self, %opt) = @_;
		my $conf = $opt{argv}[-1];
		MilterPeers::spew($conf, MilterPeers::slurp($conf)
				  . "TCPSocket $self->{tcp_port}\nTCPAddr 127.0.0.1\n");
		return $self->SUPER::spawn(%opt);
	}
}

my $clamd = ClamdTcp->new(tcp_port => SluiceTest::free_port())->start;
my $UNOFFICIAL = qr/\.UNOFFICIAL/;   # names from an unsigned database

my %msg = (
	MilterPeers::virus_messages(),
	custom => "From: sender\@example.org\nSubject: custom\n\nit holds $MilterPeers::Clamd::CUSTOM_STRING\n",
);

my $t = SluiceTest->new(main => {
	sluice_plugins => 'clamav',
	sluice_builtin_plugins => '',      # this test needs no other filter
	clamav_mode => 'clamd',
	clamav_clamd_socket => 'unix:' . $clamd->socket_path,
	clamav_add_header => 'yes',
	smtpd_peername_lookup => 'no' });

sub send_msg {
	my ($name) = @_;
	my $c = SluiceTest::Client->new(port => $t->port) or return (undef, "connect: $!");
	return $c->send_message($msg{$name}, from => 'sender@example.org', to => ['rcpt@example.net']);
}

my ($code, $text) = send_msg('clean');
is($code, 250, 'clamd mode: a clean message is accepted') or diag($text, $t->log_text);
my ($id) = ($text // '') =~ /queued as (\S+)/;
like(MilterPeers::sluice_message($t, $id), qr/^X-Virus-Status: Clean$/m,
     'with X-Virus-Status: Clean');

my %virus = (eicar => 'Eicar-Test-Signature', zip => 'Eicar-Test-Signature',
	     custom => $MilterPeers::Clamd::CUSTOM_NAME);
for my $name (qw(eicar zip custom)) {
	my @before = $t->queue_files;
	my $mark = $t->log_mark;
	($code, $text) = send_msg($name);
	like($text // '', qr/^550 5\.7\.1 Virus found: \Q$virus{$name}\E$UNOFFICIAL$/,
	     "$name: 550 5.7.1 Virus found: NAME, the name clamd found")
	    or diag($t->log_text($mark), $clamd->log_text);
	ok($t->wait_log(qr/: clamav: reject: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: 5\.7\.1 Virus found: \Q$virus{$name}\E$UNOFFICIAL; from=<sender\@example\.org> to=<rcpt\@example\.net>$/,
			10, from => $mark), "$name: logged as clamav: reject")
	    or diag($t->log_text($mark));
	is_deeply([$t->queue_files], \@before, "$name: nothing is queued");
}
like($clamd->log_text, qr/Eicar-Test-Signature\S* FOUND/, "clamd's own log has the find");

# ---- over TCP -------------------------------------------------------------

$t->set_main(clamav_clamd_socket => "inet:127.0.0.1:$clamd->{tcp_port}");
$t->reload;
ok(SluiceTest::wait_until(sub {
	my $n = () = $t->log_text =~ /clamav: scanning with clamd at inet:127\.0\.0\.1:/g;
	return $n >= $t->config('sluice_smtpd_workers') }, 30),
   'reload: the workers scan with clamd over TCP now');
($code, $text) = send_msg('eicar');
like($text // '', qr/^550 5\.7\.1 Virus found: Eicar-Test-Signature$UNOFFICIAL$/,
     'inet:127.0.0.1:PORT: EICAR rejected with its name') or diag($t->log_text);
($code, $text) = send_msg('clean');
is($code, 250, 'inet:127.0.0.1:PORT: a clean message is accepted') or diag($text);

# ---- clamd down -----------------------------------------------------------

$clamd->stop;
my @before = $t->queue_files;
my $mark = $t->log_mark;
($code, $text) = send_msg('clean');
like($text // '', qr/^451 4\.7\.1 /, 'clamd down: tempfail (451 4.7.1)') or diag($t->log_text($mark));
is_deeply([$t->queue_files], \@before, 'clamd down: nothing is queued');
ok($t->wait_log(qr/warning: \S+: clamav: scan failed: clamd inet:127\.0\.0\.1:\d+: Connection refused; message deferred/,
		10, from => $mark), 'the log names the socket and the error')
    or diag($t->log_text($mark));

done_testing;
