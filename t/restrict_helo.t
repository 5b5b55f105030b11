#!/usr/bin/perl
# restrict_helo.t - Postfix's built-in HELO restrictions, without DNS
# (reject_unknown_helo_hostname against a DNS server: restrict_dns.t):
# reject_invalid_helo_hostname (501 5.5.2 Invalid name), reject_non_fqdn_
# helo_hostname (504 5.5.2 need fully-qualified hostname), address
# literals ("invalid ip address"), the old names, the reply code
# parameters, smtpd_delay_reject (at RCPT by default, at HELO with "no"),
# and silence before HELO.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $RCPT = 'user@mx.example.test';
my %L = (
	invalid => '-o smtpd_helo_restrictions=reject_invalid_helo_hostname',
	fqdn    => '-o smtpd_helo_restrictions=reject_non_fqdn_helo_hostname',
	oldname => '-o smtpd_helo_restrictions=reject_invalid_hostname,reject_non_fqdn_hostname',
	codes   => '-o smtpd_helo_restrictions=reject_invalid_helo_hostname,reject_non_fqdn_helo_hostname'
		 . ' -o invalid_hostname_reject_code=550 -o non_fqdn_reject_code=554',
	nodelay => '-o smtpd_delay_reject=no -o smtpd_helo_restrictions=reject_non_fqdn_helo_hostname',
	unknown => '-o smtpd_helo_restrictions=reject_unknown_helo_hostname',
);
my $t = SluiceTest->new(main => { smtpd_peername_lookup => 'no',
				  local_recipient_maps => '',
				  smtpd_soft_error_limit => 1000,
				  smtpd_hard_error_limit => 1000 },
			listeners => \%L);

# EHLO, MAIL, RCPT on a listener: the reply of the first step that is not
# 250, or of RCPT.
sub helo_reply {
	my ($listener, $helo) = @_;
	my $c = $t->smtp($listener);
	$c->read_reply;
	my @r;
	for my $cmd ((defined $helo ? ("EHLO $helo") : ()),
		     'MAIL FROM:<sender@example.org>', "RCPT TO:<$RCPT>") {
		@r = $c->cmd($cmd);
		last unless defined $r[0] && $r[0] eq '250';
	}
	$c->cmd('QUIT');
	$c->close;
	my $text = $r[1] // '';
	$text =~ s/\n.*//s if $text =~ /^250-/;   # EHLO's keyword lines
	return $text;
}

sub helo_is {
	my ($listener, $helo, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(helo_reply($listener, $helo), $want, $name);
}

my $OK = '250 2.1.5 Ok';
my $inv = sub { "501 5.5.2 <$_[0]>: Helo command rejected: Invalid name" };
my $lit = sub { "501 5.5.2 <$_[0]>: Helo command rejected: invalid ip address" };
my $fq  = sub { "504 5.5.2 <$_[0]>: Helo command rejected: need fully-qualified hostname" };

# ---- reject_invalid_helo_hostname --------------------------------------

helo_is('invalid', 'client.example.org', $OK, 'invalid: a host name passes');
helo_is('invalid', 'under_score.example.org', $OK, 'invalid: "_" is allowed, as in Postfix');
helo_is('invalid', 'client.example.org.', $OK, 'invalid: one trailing dot is allowed');
helo_is('invalid', 'localhost', $OK, 'invalid: a single label is valid syntax');
helo_is('invalid', '192.0.2.1', $OK, 'invalid: a bare IPv4 address is accepted (Postfix back compat)');
helo_is('invalid', 'bad!name.example', $inv->('bad!name.example'),
	'invalid: a character no host name has -> 501 5.5.2 Invalid name at RCPT');
helo_is('invalid', '-lead.example', $inv->('-lead.example'), 'invalid: a label starting with "-"');
helo_is('invalid', 'trail-.example', $inv->('trail-.example'), 'invalid: a label ending with "-"');
helo_is('invalid', 'a..b.example', $inv->('a..b.example'), 'invalid: an empty label');
helo_is('invalid', 'host.example..', $inv->('host.example..'), 'invalid: two trailing dots');
helo_is('invalid', '12345', $inv->('12345'), 'invalid: an all-numeric name');
my $long = ('a' x 64) . '.example';
helo_is('invalid', $long, $inv->($long), 'invalid: a label longer than 63');
helo_is('invalid', '[192.0.2.1]', $OK, 'invalid: an IPv4 address literal');
helo_is('invalid', '[IPv6:2001:db8::1]', $OK, 'invalid: an IPv6 address literal');
helo_is('invalid', '[192.0.2.300]', $lit->('[192.0.2.300]'),
	'invalid: a bad IPv4 literal -> 501 5.5.2 invalid ip address');
helo_is('invalid', '[2001:db8::1]', $lit->('[2001:db8::1]'),
	'invalid: an IPv6 literal without the IPv6: tag is invalid');
helo_is('invalid', '[mx.example.org]', $lit->('[mx.example.org]'),
	'invalid: a name in brackets is an invalid literal');
helo_is('invalid', undef, $OK, 'invalid: without HELO the HELO restrictions say nothing');

# ---- reject_non_fqdn_helo_hostname -------------------------------------

helo_is('fqdn', 'client.example.org', $OK, 'fqdn: a fully qualified name passes');
helo_is('fqdn', 'client.example.org.', $OK, 'fqdn: with its trailing dot too');
helo_is('fqdn', 'localhost', $fq->('localhost'),
	'fqdn: a name without a dot -> 504 5.5.2 need fully-qualified hostname');
helo_is('fqdn', '192.0.2.1', $fq->('192.0.2.1'), 'fqdn: a bare address is not a host name');
helo_is('fqdn', 'bad!x.example', $fq->('bad!x.example'), 'fqdn: an invalid name is not qualified either');
helo_is('fqdn', '[192.0.2.1]', $OK, 'fqdn: an address literal passes');
helo_is('fqdn', '[192.0.2]', $lit->('[192.0.2]'), 'fqdn: a bad address literal is invalid');
helo_is('fqdn', undef, $OK, 'fqdn: without HELO the HELO restrictions say nothing');

# ---- old names, reply codes, delay ----------------------------------

helo_is('oldname', 'bad!x.example', $inv->('bad!x.example'), 'reject_invalid_hostname is the old name');
helo_is('oldname', 'localhost', $fq->('localhost'), 'reject_non_fqdn_hostname is the old name');
helo_is('codes', 'bad!x.example',
	'550 5.5.2 <bad!x.example>: Helo command rejected: Invalid name',
	'invalid_hostname_reject_code = 550');
helo_is('codes', 'localhost',
	'554 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname',
	'non_fqdn_reject_code = 554');
helo_is('codes', '[1.2.3]',
	'550 5.5.2 <[1.2.3]>: Helo command rejected: invalid ip address',
	'invalid ip address uses invalid_hostname_reject_code');

{
	my $c = $t->smtp('nodelay');
	$c->read_reply;
	my ($code, $text) = $c->cmd('EHLO localhost');
	is($text, $fq->('localhost'), 'smtpd_delay_reject = no: the reply comes at EHLO');
	($code, $text) = $c->cmd('EHLO client.example.org');
	is($code, '250', '... and a good name then passes');
	$c->close;
}

# reject_unknown_helo_hostname checks address literals without DNS.
helo_is('unknown', '[192.0.2.1]', $OK, 'unknown: a valid literal needs no lookup');
helo_is('unknown', '[192.0.2.999]', $lit->('[192.0.2.999]'),
	'unknown: an invalid literal is "invalid ip address"');

like($t->log_text, qr/NOQUEUE: reject: RCPT from \S+: 501 5\.5\.2 <bad!name\.example>: Helo command rejected: Invalid name; from=<sender\@example\.org> to=<user\@mx\.example\.test> proto=ESMTP helo=<bad!name\.example>/,
     'the reject is logged as Postfix does');

done_testing;
