#!/usr/bin/perl
# open_relay.t - the open-relay battery (cases/open_relay.cases) against
# a real Postfix, finished to the queue: every trick the table says
# Postfix accepts must reach Postfix's queue with local recipients only
# (postcat -e), and every other one is refused at RCPT.  This proves the
# battery's yardstick (the same check t/restrict_open_relay.t applies to
# sluice's queue); t/compat/postfix_compat.t compares the reply codes of
# the two servers case by case.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin", "$FindBin::Bin/../lib";
use Test::More;
use PostfixPeer;
use RestrictCases;

my $why = PostfixPeer->unavailable;
plan skip_all => $why if $why;

my $pf = PostfixPeer->new;
my ($refused, $accepted) = (0, 0);
for my $config (RestrictCases::load(RestrictCases::case_files('open_relay'))) {
	(my $tdir = $config->{name}) =~ s{/}{-}g;
	my $main = RestrictCases::materialise($config, $pf->top . "/tables/$tdir",
					      sub { $pf->postmap($_[0]) });
	my @relay = split /[\s,]+/, $main->{relay_domains} // '';
	$pf->configure(main => $main);
	$pf->start;
	for my $case (@{ $config->{cases} }) {
		my @steps = RestrictCases::play(RestrictCases::with_message($case), $pf->port);
		my ($rcpt) = grep { $_->{cmd} =~ /^RCPT/ } @steps;
		my @bad = map { "  $_->{cmd} => " . RestrictCases::show($_->{got}) . ': '
				    . RestrictCases::mismatch($_->{got}, $_->{expect}, 'code') }
		    grep { !$_->{extra} && RestrictCases::mismatch($_->{got}, $_->{expect}, 'code') } @steps;
		if ($rcpt->{got} && $rcpt->{got}{code} =~ /^2/) {
			$accepted++;
			my $dot = $steps[-1]{got};
			if ($dot && $dot->{text} =~ /queued as (\S+)/) {
				my $env = $pf->envelope($1);
				push @bad, "  no recipient in postcat -e:\n$env->{text}" unless @{ $env->{rcpt} };
				for my $r (@{ $env->{rcpt} }) {
					my $why = RestrictCases::not_local($r, \@relay);
					push @bad, "  Postfix queued $r: $why" if $why;
				}
			} else {
				push @bad, '  accepted, not queued: ' . RestrictCases::show($dot);
			}
		} else {
			$refused++;
		}
		ok(!@bad, "postfix   $config->{name}: $case->{title}")
		    or diag("$case->{file}:$case->{line}\n", join "\n", @bad);
	}
}
$pf->stop;
ok($refused >= 35, "Postfix refuses most tricks at RCPT ($refused refused, $accepted local)");

done_testing();
