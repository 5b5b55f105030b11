#!/usr/bin/perl
# smtp_footer.t - smtpd_reject_footer: Postfix's footer on every 4xx/5xx
# reply of the SMTP server, as a last line with the same codes, or on the
# same line when it starts with "\c"; 2xx/3xx replies never get it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $t = SluiceTest->new(main => { smtpd_reject_footer => 'See https://help.example.test/smtp' });
my $c = $t->smtp;
my ($code, $text) = $c->read_reply;
is($text, '220 mx.example.test ESMTP sluice', 'the greeting has no footer');
($code, $text) = $c->cmd('HELO client.example.test');
is($text, '250 mx.example.test', 'nor has a 250');
($code, $text) = $c->cmd('RCPT TO:<a@example.test>');
is($text, "503-5.5.1 Error: need MAIL command\n503 5.5.1 See https://help.example.test/smtp",
   'a 503 gets the footer as its last line, same codes');
($code, $text) = $c->cmd('BOGUS');
is($text, "500-5.5.2 Error: command not recognized\n500 5.5.2 See https://help.example.test/smtp",
   'so does a 500 (an unknown command)');
$c->cmd('QUIT');

$t->set_main(smtpd_reject_footer => '\c (see the help desk)');
$t->reload;
$c = $t->smtp;
$c->read_reply;
($code, $text) = $c->cmd('RCPT TO:<a@example.test>');
is($text, '503 5.5.1 Error: need MAIL command (see the help desk)',
   'a footer starting with \c goes on the same line');
$c->cmd('QUIT');

done_testing;
