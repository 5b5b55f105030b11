#!/usr/bin/perl
# The access(5) search order of the access plugin against a real Postfix
# (Debian's, private, in a temp dir: t/lib/PostfixPeer.pm): the same
# main.cf lines and texthash tables on both, and for each probe - a HELO
# name, a sender, a recipient - the same reply, word for word.  Each table
# entry answers with a text naming the key it is, so the reply tells which
# key of the search matched first: the address without its extension
# before the domain, parent domains in either parent_domain_matches_
# subdomains style, "user+ext@" before "user@", the null sender's <>,
# address literals, helo names with a trailing dot, numeric helo names
# (no parents), case folding, client address prefixes.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use PostfixPeer;
use SluiceTest;

my $why = PostfixPeer->unavailable;
BAIL_OUT($why) if $why;

my $pf = PostfixPeer->new;
my $tables = $pf->top . '/tables';
PostfixPeer::write_file("$tables/sender", <<'EOF_T');
u1@sub1.one.test	REJECT user@domain without the extension
sub1.one.test	REJECT the domain
two.test	REJECT parent domain, plain
.two.test	REJECT parent domain, with a dot
u3+x@	REJECT user+ext@
u3@	REJECT user@
u4@	REJECT user@ without the extension
0.2.5]	REJECT a parent of an address literal
<>	REJECT the null sender
u9@nine.test	REJECT folded
EOF_T
PostfixPeer::write_file("$tables/helo", <<'EOF_T');
six.test.	REJECT parent of a helo name with a trailing dot
.test.	REJECT dot parent of a helo name with a trailing dot
0.2.7	REJECT parent of a numeric helo name
EOF_T
PostfixPeer::write_file("$tables/client", "127.0.0\tREJECT client address prefix\n");
PostfixPeer::write_file("$tables/rcpt", "clientprobe\@example.net\tclientcls\n");

my %main = (
	mynetworks => '127.0.0.0/8',
	recipient_delimiter => '+',
	smtpd_helo_restrictions => "check_helo_access texthash:$tables/helo",
	smtpd_sender_restrictions => "check_sender_access texthash:$tables/sender",
	smtpd_recipient_restrictions => "check_recipient_access texthash:$tables/rcpt",
	smtpd_restriction_classes => 'clientcls',
	clientcls => "check_client_access texthash:$tables/client",
);

# [helo, sender, recipient, what it shows]
my @probes = (
	['client.test', 'u1+x@sub1.one.test', 'a@example.net', 'user@domain before the domain'],
	['client.test', 'u2+x@sub2.two.test', 'a@example.net', 'parent domain style'],
	['client.test', 'u3+x@three.test', 'a@example.net', 'user+ext@ before user@'],
	['client.test', 'u4+x@four.test', 'a@example.net', 'user@ last'],
	['client.test', 'u5@[192.0.2.5]', 'a@example.net', 'address literal domain'],
	['client.test', '', 'a@example.net', 'null sender'],
	['host.six.test.', 'ok@ok.test', 'a@example.net', 'helo with a trailing dot'],
	['192.0.2.7', 'ok@ok.test', 'a@example.net', 'numeric helo: no parents'],
	['client.test', 'U9@NINE.test', 'a@example.net', 'case folding'],
	['client.test', 'u9+a+b@nine.test', 'a@example.net', 'extension cut at the first delimiter'],
	['client.test', 'ok@ok.test', 'clientprobe@example.net', 'client address prefix'],
);

sub rcpt_reply {
	my ($port, $p) = @_;
	my $c = SluiceTest::Client->new(port => $port, timeout => 10) or return 'no connection';
	$c->read_reply;
	$c->cmd("EHLO $p->[0]");
	my ($code, $text) = $c->cmd("MAIL FROM:<$p->[1]>");
	($code, $text) = $c->cmd("RCPT TO:<$p->[2]>") if defined $code && $code == 250;
	$c->cmd('QUIT');
	return $text // 'no reply';
}

for my $style (['Postfix default', undef], ['dot style', '']) {
	my %m = %main;
	$m{parent_domain_matches_subdomains} = $style->[1] if defined $style->[1];
	$pf->configure(main => \%m);
	$pf->start;
	my $t = SluiceTest->new(main => { %m, smtpd_peername_lookup => 'no' });
	for my $p (@probes) {
		my $postfix = rcpt_reply($pf->port, $p);
		like($postfix, qr/^[245]\d\d \d\.\d\.\d+ /, "Postfix answers: $postfix");
		is(rcpt_reply($t->port, $p), $postfix,
		   "$style->[0]: $p->[3] ($p->[0], <$p->[1]>, <$p->[2]>)");
	}
	$t->stop;
	$pf->stop;
}

done_testing;
