#!/usr/bin/perl
# policyd_postfix.t - sluice-policyd as the policy server of a real,
# private Postfix (check_policy_service inet:127.0.0.1:PORT), and of
# sluice itself.
#
# sluice-policyd runs policyd_restrictions = check_client_access
# (texthash), check_sender_access (texthash), check_greylist (LMDB store,
# greylist_delay = 2s).  Asserted as a Postfix admin would check them:
#  - a client listed REJECT gets Postfix's 554 with the table's text
#    (the action carries the restriction's own text; Postfix puts its
#    "<rcpt>: Recipient address rejected: " before it, as for any
#    policy server);
#  - a sender listed with "554 5.7.1 text" gets that code and text;
#  - a new triplet gets 450 4.2.0 ... Greylisted, a retry after the delay
#    250, and the queued message carries the X-Greylist header
#    (PREPEND passed through as the policy action);
#  - a request line without "=" is ignored (as Postfix's example policy
#    server does) and the request still answered; a request of another
#    type closes the connection; many clients at once are all answered,
#    several requests on one connection too;
#  - sluice as the policy client (check_policy_service against
#    sluice-policyd) gets the same reject.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use Time::HiRes qw(time sleep);
use SluiceTest qw(free_port wait_until slurp);
use PostfixPeer;

BAIL_OUT(PostfixPeer->unavailable) if PostfixPeer->unavailable;

my $root = "$FindBin::Bin/..";
my $policyd = "$root/build/bin/sluice-policyd";
BAIL_OUT("$policyd is not built: run make") unless -x $policyd;

my $delay = 2;
my $dir = tempdir('policyd-test-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{SLUICE_KEEP_TMP});
chmod 0755, $dir;
sub put { my ($f, $text) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $text; close $fh }
put("$dir/clients", "127.0.0.2 REJECT client blocked by policyd\n");
put("$dir/senders", "bad\@example.org 554 5.7.1 no mail from this sender\n");
put("$dir/main.cf", <<"EOF");
queue_directory = $dir/queue
myhostname = mx.example.test
plugin_directory = $root/build/plugins
policyd_restrictions = check_client_access texthash:$dir/clients,
    check_sender_access texthash:$dir/senders, check_greylist
greylist_store = lmdb:$dir/greylist.lmdb
greylist_delay = ${delay}s
EOF
put("$dir/master.cf", "");

my $pport = free_port();
my $sock = "$dir/policyd.sock";
my $pid = SluiceTest::spawn_logged("$dir/policyd.log", $policyd, '-c', $dir, '-l', "inet:127.0.0.1:$pport");
END { local $?; if ($pid) { kill "TERM", $pid; waitpid $pid, 0 } }
ok(wait_until(sub { (slurp("$dir/policyd.log") // '') =~ /daemon started -- listening on inet:127\.0\.0\.1:$pport, 3 restrictions/ }, 20),
   'sluice-policyd starts and says where it listens')
    or BAIL_OUT("sluice-policyd did not start:\n" . (slurp("$dir/policyd.log") // ''));

# ---- the protocol, spoken directly ------------------------------------------

sub request {
	my (%a) = @_;
	my %base = (request => 'smtpd_access_policy', protocol_state => 'RCPT',
		    protocol_name => 'ESMTP', client_address => '192.0.2.1',
		    client_name => 'client.example', helo_name => 'client.example',
		    sender => 'someone@example.org', recipient => 'user@example.net');
	%base = (%base, %a);
	return join('', map { "$_=$base{$_}\n" } sort keys %base) . "\n";
}

sub answer {
	my ($s) = @_;
	my ($line, $empty) = (scalar <$s>, scalar <$s>);
	return undef unless defined $line && defined $empty && $empty eq "\n";
	chomp $line;
	return $line;
}

my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pport) or die "connect: $!";
print $s request(client_address => '127.0.0.2');
is(answer($s), 'action=554 5.7.1 client blocked by policyd',
   'REJECT in the client table: the access reply as the action');
print $s "this line has no equals sign\n", request(sender => 'bad@example.org');
is(answer($s), 'action=554 5.7.1 no mail from this sender',
   'a garbage line is ignored; the next request on the same connection is answered');
ok(wait_until(sub { (slurp("$dir/policyd.log") // '') =~ /warning: .*ignoring garbage: this line has no equals sign/ }, 10),
   '... and logged as a warning');
print $s request(protocol_state => 'CONNECT', sender => '', recipient => '');
is(answer($s), 'action=DUNNO', 'nothing to say at CONNECT: DUNNO');
print $s "request=junk_policy\n\n";
is(scalar <$s>, undef, 'a request of another type: the connection is closed');
close $s;

# many clients at once, each answered on its own connection
my @c = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pport) or die } 1 .. 20;
print { $c[$_] } request(client_address => '127.0.0.2') for 0 .. $#c;
my $all = grep { (answer($_) // '') =~ /^action=554 / } @c;
is($all, scalar @c, '20 clients at once are all answered');
close $_ for @c;

# ---- a real Postfix as the client ------------------------------------------

my $pf = PostfixPeer->new;
$pf->configure(main => {
	mynetworks => '127.0.0.0/8',
	relay_domains => 'example.net',
	smtpd_recipient_restrictions =>
	    "check_policy_service inet:127.0.0.1:$pport, permit_mynetworks, reject_unauth_destination",
});
$pf->start;

sub smtp_cmd {
	my ($c, $cmd) = @_;
	print $c "$cmd\r\n" if defined $cmd;
	my $reply = '';
	while (my $l = <$c>) {
		$reply .= $l;
		last if $l =~ /^\d{3} /;
	}
	$reply =~ s/\r//g;
	chomp $reply;
	return $reply;
}

sub pf_session {
	my ($from_addr) = @_;
	my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pf->port,
				      LocalAddr => $from_addr) or die "connect: $!";
	smtp_cmd($c);
	smtp_cmd($c, 'EHLO client.example');
	return $c;
}

my $c = pf_session('127.0.0.2');
smtp_cmd($c, 'MAIL FROM:<someone@example.org>');
is(smtp_cmd($c, 'RCPT TO:<user@example.net>'),
     '554 5.7.1 <user@example.net>: Recipient address rejected: client blocked by policyd',
     'Postfix: the client in the table is rejected with its text');
close $c;

$c = pf_session('127.0.0.1');
smtp_cmd($c, 'MAIL FROM:<bad@example.org>');
is(smtp_cmd($c, 'RCPT TO:<user@example.net>'),
   '554 5.7.1 <user@example.net>: Recipient address rejected: no mail from this sender',
   'Postfix: the sender in the table is rejected with its code and text');

sub try_rcpt {
	smtp_cmd($c, 'RSET');
	smtp_cmd($c, 'MAIL FROM:<friend@example.org>');
	return smtp_cmd($c, 'RCPT TO:<user@example.net>');
}
my $t0 = time;
like(try_rcpt(), qr{^450 4\.2\.0 <user\@example\.net>: Recipient address rejected: Greylisted},
     'Postfix: a new triplet is greylisted (450 4.2.0)');
my ($text, $refused) = ('', 0);
while (time - $t0 < $delay + 10) {
	$text = try_rcpt();
	last if $text =~ /^250 /;
	$refused++ if $text =~ /^450 /;
	sleep 0.25;
}
like($text, qr/^250 /, 'Postfix: a retry after greylist_delay is accepted');
cmp_ok(time - $t0, '>=', $delay - 1, '... not before the delay');
is((split / /, smtp_cmd($c, 'DATA'))[0], '354', 'DATA');
like(smtp_cmd($c, "Subject: policyd\r\n\r\nhello\r\n."), qr/^250 2\.0\.0 Ok: queued as (\w+)/,
     'the message is queued');
smtp_cmd($c, 'QUIT');
close $c;
my @q = $pf->queue_files('incoming');
my $content = @q ? `$PostfixPeer::POSTCAT -c @{[$pf->dir]} -h -q $q[-1] 2>&1` : '';
like($content, qr/^X-Greylist: delayed \d+ seconds by sluice-greylist/m,
     'the queued message carries X-Greylist (the PREPEND action)') or diag $content;
$pf->stop;

# ---- sluice as the client ----------------------------------------------------

my $t = SluiceTest->new(main => {
	mynetworks => '127.0.0.0/8',
	relay_domains => 'example.net',
	smtpd_recipient_restrictions =>
	    "check_policy_service inet:127.0.0.1:$pport, permit_mynetworks, reject_unauth_destination",
});
my $sc = $t->smtp;
$sc->hello('client.example');
$sc->cmd('MAIL FROM:<bad@example.org>');
my (undef, $stext) = $sc->cmd('RCPT TO:<user@example.net>');
is($stext, '554 5.7.1 <user@example.net>: Recipient address rejected: no mail from this sender',
   'sluice as the policy client gets the same reject');
$t->stop;

done_testing;
