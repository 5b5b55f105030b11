#!/usr/bin/perl
# milter_check.t - `sluice check` on the milter parameters: the braces
# form and every option are accepted; a malformed entry, an unknown
# option, a bad default action or protocol is an error with its file and
# line, also when it comes from a master.cf -o override.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $t = SluiceTest->new(start => 0, main => {
	smtpd_milters => 'inet:127.0.0.1:8891, unix:/run/m.sock, '
	    . '{ inet:[::1]:8892, connect_timeout=5s, command_timeout = 10s, '
	    . 'content_timeout=2m, default_action=accept, protocol=4 }',
	non_smtpd_milters => '$smtpd_milters',
	milter_default_action => 'quarantine',
});
my ($rc, $out) = $t->sluice('check');
is($rc, 0, 'a valid milter configuration passes') or diag($out);

$t->set_main(smtpd_milters => 'inet:127.0.0.1:8891, { unix:/run/m.sock, default_action=maybe }',
	     non_smtpd_milters => '{ inet:127.0.0.1:1, colour=blue }, tcp:10.0.0.1',
	     milter_default_action => 'bounce', milter_protocol => 5);
($rc, $out) = $t->sluice('check');
is($rc, 1, 'a bad milter configuration fails');
like($out, qr/main\.cf:\d+: smtpd_milters: \{ unix:\/run\/m\.sock, default_action=maybe \}: default_action=maybe: expected accept, reject, tempfail or quarantine/,
     'bad per-milter default_action, with the line');
like($out, qr/non_smtpd_milters: \{ inet:127\.0\.0\.1:1, colour=blue \}: unknown milter option "colour"/,
     'unknown option');
like($out, qr/non_smtpd_milters: tcp:10\.0\.0\.1: .*expected unix:\/path or inet:host:port/,
     'unknown transport');
like($out, qr/main\.cf:\d+: milter_default_action = bounce: expected/, 'bad milter_default_action');
like($out, qr/main\.cf:\d+: milter_protocol = 5: expected 2, 3, 4 or 6/, 'bad milter_protocol');

$t->set_main(smtpd_milters => undef, non_smtpd_milters => undef,
	     milter_default_action => undef, milter_protocol => undef);
$t->{listeners} = { smtp => '-o smtpd_milters=bogus:x' };
$t->write_master;
($rc, $out) = $t->sluice('check');
is($rc, 1, 'a bad -o smtpd_milters in master.cf fails too');
like($out, qr/master\.cf:\d+: smtpd_milters: bogus:x/, '... pointing at master.cf');

done_testing;
