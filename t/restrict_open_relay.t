#!/usr/bin/perl
# restrict_open_relay.t - the open-relay battery (t/compat/cases/
# open_relay.cases) against sluice: address tricks from an untrusted
# client (127.0.0.2; mynetworks = 127.0.0.1/32) - percent hacks, source
# routes, bang paths, quoted and escaped local parts with @ or %, two @,
# address literals of this host and others, trailing dots, case games,
# the same with relay_domains, and with no restriction settings at all.
#
# For each case: the RCPT reply must be the one the table holds (Postfix's,
# checked against a real Postfix by t/compat/postfix_compat.t), and the
# transaction is then finished (DATA and a message): whatever sluice
# accepted must sit in the queue with local recipients only (a domain of
# mydestination, [127.0.0.1], or a relay_domains domain for that config),
# and no accepted local part may carry routing (@, %, ! outside quotes or
# a source route).  Nothing relays.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/compat";
use Test::More;
use RestrictCases;
use SluiceTest;

my @configs = RestrictCases::load(RestrictCases::case_files('open_relay'));
my ($refused, $accepted) = (0, 0);
for my $config (@configs) {
	my @relay = split /[\s,]+/, $config->{main}{relay_domains} // '';
	my ($t, $error) = RestrictCases::start_sluice($config);
	for my $case (@{ $config->{cases} }) {
		my $name = "$config->{name}: $case->{title}";
		local $TODO = $case->{todo};   # undef: not a TODO
		if ($error) {
			fail($name);
			diag("$case->{file}:$case->{line}: $error");
			next;
		}
		# the table's steps, then DATA and a message
		my @steps = RestrictCases::play(RestrictCases::with_message($case), $t->port);
		my @bad;
		for my $s (grep { !$_->{extra} } @steps) {
			my $want = $s->{sluice_expect} // $s->{expect};
			my $why = RestrictCases::mismatch($s->{got}, $want, 'text');
			push @bad, "  $s->{cmd} => " . RestrictCases::show($s->{got})
			    . "\n      wanted " . RestrictCases::show($want) . " ($why)" if $why;
		}
		my ($rcpt) = grep { $_->{cmd} =~ /^RCPT/ } @steps;
		my $ok_rcpt = $rcpt->{got} && $rcpt->{got}{code} =~ /^2/;
		$ok_rcpt ? $accepted++ : $refused++;
		my $dot = $steps[-1]{got};
		if ($ok_rcpt) {
			if ($dot && $dot->{code} eq '250' && $dot->{text} =~ /queued as (\S+)/) {
				my $q = SluiceTest::read_queue_file($t->queue_path($1));
				if (!$q) {
					push @bad, "  queue file $1 not in incoming/";
				} else {
					for my $r (@{ $q->{rcpt} }) {
						my $why = RestrictCases::not_local($r->{addr}, \@relay);
						push @bad, "  queued for a recipient that is not local: $r->{addr}: $why" if $why;
					}
				}
			} else {
				push @bad, '  accepted RCPT, but the message was not queued: '
				    . RestrictCases::show($dot);
			}
		}
		ok(!@bad, $name) or diag("$case->{file}:$case->{line}\n", join "\n", @bad);
	}
	$t->stop if $t;
}
ok($refused >= 35, "most tricks are refused at RCPT ($refused refused, $accepted local)");

done_testing();
