#!/usr/bin/perl
# postfix_compat.t - the restriction case table against a real Postfix
# and against sluice: for every DNS-independent case in
# t/compat/cases/*.cases, each step of the dialogue must get from
# Postfix (Debian's, private, in a temp dir) the reply the case table
# says (code, enhanced code and text: the table holds Postfix's answers),
# and from sluice, configured with the same main.cf lines and tables, the
# same three-digit code and enhanced status code as Postfix.  The reply
# text is compared on sluice by t/restrict_cases.t.
#
#   prove t/compat/postfix_compat.t
#   COMPAT_CASES=relay,client prove -v t/compat/postfix_compat.t
#   COMPAT_ONLY=postfix ...   only the Postfix side (to write cases)
#
# Each configuration gets one Postfix (restarted, milliseconds) and one
# sluice; its cases then run one connection each.  A configuration sluice
# refuses to start with fails every sluice check of its cases, with the
# reason.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin", "$FindBin::Bin/../lib";
use Test::More;
use PostfixPeer;
use RestrictCases;
use SluiceTest;

my $why = PostfixPeer->unavailable;
plan skip_all => $why if $why;

my @files = RestrictCases::case_files(split /,/, $ENV{COMPAT_CASES} // '');
my @configs = RestrictCases::load(@files);
my $only = $ENV{COMPAT_ONLY} // '';

my $pf = PostfixPeer->new;

for my $config (@configs) {
	(my $tdir = $config->{name}) =~ s{/}{-}g;
	my $main = RestrictCases::materialise($config, $pf->top . "/tables/$tdir",
					      sub { $pf->postmap($_[0]) });
	$pf->configure(main => $main);
	$pf->start;

	my ($sl, $sl_error) = $only eq 'postfix' ? () : RestrictCases::start_sluice($config);

	for my $case (@{ $config->{cases} }) {
		my $name = "$config->{name}: $case->{title}";
		if ($case->{differs}) {
			SKIP: {
				skip("$name: $case->{differs} (docs/postfix-differences.md)", 2);
			}
			next;
		}
		my @p = RestrictCases::play($case, $pf->port);
		my @bad;
		for my $s (@p) {
			my $why = RestrictCases::mismatch($s->{got}, $s->{expect}, 'text');
			push @bad, "  $s->{cmd} => " . RestrictCases::show($s->{got})
			    . "  (table says " . RestrictCases::show($s->{expect}) . ": $why)"
			    if $why;
		}
		ok(!@bad, "postfix   $name") or diag("$case->{file}:$case->{line}\n", join "\n", @bad);
		next if $only eq 'postfix';

		TODO: {
			local $TODO = $case->{todo};   # undef: not a TODO
			if ($sl_error) {
				fail("sluice    $name");
				diag("$case->{file}:$case->{line}: $sl_error");
				next;
			}
			my @s = RestrictCases::play($case, $sl->port);
			my @diff;
			for my $i (0 .. $#p) {
				my ($ps, $ss) = ($p[$i], $s[$i]);
				my $want = !$ps->{got} ? $ps->{expect}
				    : $ps->{got}{closed} ? { code => 'closed', closed => 1 }
				    : { code => $ps->{got}{code}, dsn => $ps->{got}{dsn} };
				# a deliberate difference: sluice's own answer
				$want = $ss->{sluice_expect} if $ss->{sluice_expect};
				my $why = RestrictCases::mismatch($ss->{got}, $want, 'code');
				# Postfix gave no enhanced code (ETRN's replies): nor may sluice
				$why ||= 'an enhanced code where Postfix has none'
				    if !$ss->{sluice_expect} && $ps->{got} && !defined $ps->{got}{dsn}
				    && $ss->{got} && defined $ss->{got}{dsn};
				push @diff, "  $ss->{cmd} => sluice " . RestrictCases::show($ss->{got})
				    . ", postfix " . RestrictCases::show($ps->{got})
				    . ($ss->{sluice_expect} ? ', sluice-reply ' . RestrictCases::show($want) : '')
				    if $why;
			}
			ok(!@diff, "sluice    $name")
			    or diag("$case->{file}:$case->{line}\n", join "\n", @diff);
		}
	}
	$sl->stop if $sl;
}
$pf->stop;

done_testing();
