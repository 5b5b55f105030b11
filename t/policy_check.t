#!/usr/bin/perl
# policy_check.t - a check_policy_service argument that does not parse
# is refused when the restriction lists are compiled: `sluice check`
# exits non-zero with "main.cf:LINE: ..." and the fix, and `sluice run`
# refuses to start, instead of a 451 4.3.5 when mail arrives.  Good
# specs (bare endpoints, Postfix 3's braces form with every option, an
# item in nested braces) pass; the policy server is not asked at check
# time (it may start after sluice), so a dead endpoint is not an error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

# The line of main.cf that sets `param`.
sub line_of {
	my ($t, $param) = @_;
	open my $fh, '<', $t->dir . '/main.cf' or die $!;
	while (my $l = <$fh>) {
		return $. if $l =~ /^\Q$param\E\s*=/;
	}
	return 0;
}

sub config_with {
	my ($param, $spec) = @_;
	return SluiceTest->new(start => 0, main => {
		mynetworks => '127.0.0.0/8',
		$param => "check_policy_service $spec, permit_mynetworks, reject_unauth_destination",
	});
}

my $FIX = qr/; write inet:host:port, unix:pathname or \{ endpoint, name=value, \.\.\. \} with the names timeout, max_idle, max_ttl, try_limit, retry_delay, default_action, request_limit, policy_context \(docs\/policy\.md\)$/m;

my @bad = (
	['{ inet:127.0.0.1:9, bogus=1 }', qr/unknown attribute name: "bogus"/, 'an unknown option'],
	['{ inet:127.0.0.1:9, timeout=soon }', qr/bad value for attribute timeout: "soon"/, 'a bad time value'],
	['{ inet:127.0.0.1:9, try_limit=-1 }', qr/bad value for attribute try_limit/, 'a negative count'],
	['{ inet:127.0.0.1:9, max_idle }', qr/missing '=' after attribute name "max_idle"/, 'an option without a value'],
	['tcp:127.0.0.1:9', qr/need inet:host:port or unix:pathname, not "tcp:127\.0\.0\.1:9"/, 'an unknown endpoint type'],
	['{ timeout=10s }', qr/need inet:host:port or unix:pathname/, 'braces without an endpoint'],
);
for my $b (@bad) {
	my ($spec, $why, $name) = @$b;
	for my $param (qw(smtpd_recipient_restrictions smtpd_client_restrictions)) {
		my $t = config_with($param, $spec);
		my $line = line_of($t, $param);
		my ($rc, $out) = $t->sluice('check');
		isnt($rc, 0, "$name in $param: sluice check fails");
		like($out, qr/main\.cf:$line: (?:error: )?restriction check_policy_service in \Q$param\E: .*$why/,
		     "... with main.cf:$line and the reason") or diag $out;
		like($out, $FIX, '... and the fix') if $param eq 'smtpd_recipient_restrictions';
	}
}

# Start-up refuses the same configuration: nothing listens, the reason
# is on stderr.
{
	my $t = config_with('smtpd_recipient_restrictions', '{ inet:127.0.0.1:9, bogus=1 }');
	my ($rc, $out) = $t->sluice('run');
	isnt($rc, 0, 'sluice run refuses to start with a bad policy service');
	like($out, qr/main\.cf:\d+: .*unknown attribute name: "bogus"/, '... and says why');
}

# Good specs: check is silent about them (the server is not asked).
for my $spec ('inet:127.0.0.1:9', 'unix:private/policy',
	      '{ inet:127.0.0.1:9, timeout=10s, max_idle=300s, max_ttl=1000s, try_limit=2, '
	      . 'retry_delay=1s, request_limit=10, policy_context=mx, '
	      . '{ default_action = 451 4.3.5 Server configuration problem } }') {
	my $t = config_with('smtpd_recipient_restrictions', $spec);
	my ($rc, $out) = $t->sluice('check');
	unlike($out, qr/check_policy_service/, "accepted: $spec") or diag $out;
}

done_testing;
