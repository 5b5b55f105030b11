#!/usr/bin/perl
# restrict_explain_cases.t - `sluice explain` against the case table: for
# every case of t/compat/cases/*.cases that is a plain transaction (an
# optional HELO, one accepted MAIL, then RCPTs), `sluice explain --client
# ADDR --helo NAME --sender S --recipient R...` on the same configuration,
# with no server running, must print for each recipient the reply the
# live server gives (the table's: Postfix's, or the case's sluice-reply),
# "RCPT: accepted" for a 2XX.  Cases with other commands, pipelining,
# smtpd_delay_reject = no or a rejected MAIL are left to the live tests
# (t/restrict_cases.t); the count of cases checked is asserted so the
# filter cannot quietly drop them all.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib", "$FindBin::Bin/compat";
use Test::More;
use RestrictCases;

my @names = $ENV{COMPAT_CASES} ? split(/,/, $ENV{COMPAT_CASES})
    : map { m{/([^/]+)\.cases$} } RestrictCases::case_files();
my @configs = RestrictCases::load(RestrictCases::case_files(@names));

# (helo, sender, [recipient steps]) of a plain transaction, or () when the
# case is something else.
sub plain_transaction {
	my ($case) = @_;
	my @steps = @{ $case->{steps} };
	my $helo = $case->{helo};
	if (@steps && $steps[0]{cmd} =~ /^(?:HELO|EHLO) (\S+)$/i) {
		return if $steps[0]{expect}{code} ne '250';
		$helo = $1;
		shift @steps;
	}
	my $mail = shift @steps or return;
	$mail->{cmd} =~ /^MAIL FROM:<(.*)>$/ && $mail->{expect}{code} eq '250' or return;
	my $sender = $1;
	pop @steps while @steps && $steps[-1]{cmd} =~ /^(?:DATA|\.)$/;
	return unless @steps && !grep { $_->{cmd} !~ /^RCPT TO:<.*>$/ } @steps;
	return ($helo, $sender, \@steps);
}

my $checked = 0;
for my $config (@configs) {
	next if ($config->{main}{smtpd_delay_reject} // 'yes') eq 'no';
	next if grep { /reject_unauth_pipelining/ } values %{ $config->{main} };
	my @cases = grep { plain_transaction($_) } @{ $config->{cases} };
	next unless @cases;
	my ($t, $error) = RestrictCases::start_sluice($config, start => 0);
	for my $case (@cases) {
		my ($helo, $sender, $rcpts) = plain_transaction($case);
		my $name = "explain $config->{name}: $case->{title}";
		local $TODO = $case->{todo};   # undef: not a TODO
		if ($error) {
			fail($name);
			diag("$case->{file}:$case->{line}: $error");
			next;
		}
		my @args = ('explain', '--client', $case->{client});
		push @args, '--helo', $helo if defined $helo;
		push @args, '--sender', $sender if $sender ne '';
		push @args, map { ('--recipient', $_->{cmd} =~ /^RCPT TO:<(.*)>$/) } @$rcpts;
		my ($rc, $out) = $t->sluice(@args);
		my @said = $out =~ /^RCPT: (.*)$/mg;
		my @bad;
		push @bad, "  exit status $rc" if $rc;
		for my $i (0 .. $#$rcpts) {
			my $s = $rcpts->[$i];
			my $want = $s->{sluice_expect} // $s->{expect};
			my $line = $said[$i];
			my $why;
			if (!defined $line) {
				$why = 'no RCPT line';
			} elsif ($line eq 'accepted') {
				$why = $want->{code} =~ /^2/ ? '' : 'accepted';
			} else {
				my ($code, $rest) = $line =~ /^(\d{3}) ?(.*)$/ or ($why = "\"$line\"");
				if (!defined $why) {
					my $dsn = $rest =~ s/^(\d\.\d{1,3}\.\d{1,3})(?: |$)// ? $1 : undef;
					$why = RestrictCases::mismatch({ code => $code, dsn => $dsn, text => $rest },
								       $want, 'text');
				}
			}
			push @bad, "  $s->{cmd}: explain says " . ($line // 'nothing')
			    . "\n      wanted " . RestrictCases::show($want) . " ($why)" if $why;
		}
		ok(!@bad, $name)
		    or diag("$case->{file}:$case->{line}\n", join("\n", @bad), "\n$out");
		$checked++;
	}
}
cmp_ok($checked, '>=', $ENV{COMPAT_CASES} ? 1 : 250,
       "$checked plain transactions of the case table checked with explain");

done_testing();
