#!/usr/bin/perl
# restrict_cases.t - the restriction case table (t/compat/cases/*.cases,
# t/compat/cases/README) against sluice alone: every step of every case
# must get the reply code, enhanced status code and text the table says.
# The table holds Postfix's answers (t/compat/postfix_compat.t checks
# them against a real Postfix); where sluice differs on purpose the
# case says so with "sluice-reply", and a case that is sluice's own
# ("postfix-differs") runs here only.  docs/postfix-differences.md lists
# both.  The open-relay battery has its own test, t/restrict_open_relay.t.
#
#   prove t/restrict_cases.t
#   COMPAT_CASES=relay,client prove -v t/restrict_cases.t
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/compat";
use Test::More;
use RestrictCases;

my @names = $ENV{COMPAT_CASES} ? split(/,/, $ENV{COMPAT_CASES})
    : map { m{/([^/]+)\.cases$} } grep { !/open_relay/ } RestrictCases::case_files();
my @configs = RestrictCases::load(RestrictCases::case_files(@names));

for my $config (@configs) {
	my ($t, $error) = RestrictCases::start_sluice($config);
	for my $case (@{ $config->{cases} }) {
		my $name = "$config->{name}: $case->{title}";
		local $TODO = $case->{todo};   # undef: not a TODO
		if ($error) {
			fail($name);
			diag("$case->{file}:$case->{line}: $error");
			next;
		}
		my @steps = RestrictCases::play($case, $t->port);
		my @bad;
		for my $s (@steps) {
			# sluice-reply: sluice's own answer where it differs on purpose
			my $want = $s->{sluice_expect} // $s->{expect};
			my $why = RestrictCases::mismatch($s->{got}, $want, 'text');
			push @bad, "  $s->{cmd} => " . RestrictCases::show($s->{got})
			    . "\n      wanted " . RestrictCases::show($want) . " ($why)" if $why;
		}
		ok(!@bad, $name) or diag("$case->{file}:$case->{line}\n", join "\n", @bad);
	}
	$t->stop if $t;
}

done_testing();
