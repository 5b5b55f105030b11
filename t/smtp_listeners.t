#!/usr/bin/perl
# smtp_listeners.t - per-listener overrides (master.cf "-o name=value",
# and Postfix 3's "-o { name = value with spaces }"): two listeners with
# a different smtpd_banner and message_size_limit each apply their own, at
# the same time, and a listener without overrides keeps main.cf's; the
# queue file names the listener that received the message.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest qw(wait_until);

my $t = SluiceTest->new(
	main => { smtpd_banner => '$myhostname ESMTP main banner', message_size_limit => 100000 },
	listeners => {
		smtp => '',
		small => '-o { smtpd_banner = $myhostname ESMTP the small door } -o message_size_limit=3000',
		big => '-o smtpd_banner=big.example.test -o message_size_limit=50000',
	});

my $msg = "Subject: five kilobytes\n\n" . ('x' x 99 . "\n") x 50;   # ~5 kB

# Greeting and EHLO of two listeners, with both sessions open at once.
my %c = map { $_ => $t->smtp($_) } qw(small big smtp);
my %greet = map { $_ => ($c{$_}->read_reply)[1] } keys %c;
is($greet{small}, '220 mx.example.test ESMTP the small door', 'listener "small": its own banner (-o { ... } with spaces, $myhostname expanded)');
is($greet{big}, '220 big.example.test', 'listener "big": its own banner');
is($greet{smtp}, '220 mx.example.test ESMTP main banner', 'a listener without -o: main.cf\'s banner');

my %ehlo = map { $_ => ($c{$_}->cmd('EHLO client.example'))[1] } keys %c;
like($ehlo{small}, qr/^250-SIZE 3000$/m, '"small" announces SIZE 3000');
like($ehlo{big}, qr/^250-SIZE 50000$/m, '"big" announces SIZE 50000');
like($ehlo{smtp}, qr/^250-SIZE 100000$/m, 'the plain listener announces SIZE 100000');

is(($c{small}->cmd('MAIL FROM:<a@example.org> SIZE=4000'))[1], '552 5.3.4 Message size exceeds fixed limit',
   '"small": a declared 4000 bytes is over its limit');
is(($c{big}->cmd('MAIL FROM:<a@example.org> SIZE=4000'))[1], '250 2.1.0 Ok',
   '"big": the same declaration is fine');
$c{big}->cmd('RSET');

my ($code, $text) = $c{small}->transaction(body => $msg);
is($text, '552 5.3.4 Error: message file too big', '"small": a 5 kB message is refused with 552 5.3.4');
($code, $text) = $c{big}->transaction(body => $msg);
my ($id) = ($text // '') =~ /^250 2\.0\.0 Ok: queued as (\S+)$/;
ok($id, '"big": the same message is queued');
my $q = SluiceTest::read_queue_file($t->queue_path($id // 'none'));
is($q && $q->{rec}{listener}[0], '127.0.0.1:' . $t->port('big'), '... and its queue file names the listener');
like($q ? $q->{content} : '', qr/^Received: .*\n\tby mx\.example\.test \(sluice\)/,
     '... (Received: still says myhostname)');
$_->cmd('QUIT') for values %c;

done_testing;
