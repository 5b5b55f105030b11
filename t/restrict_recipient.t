#!/usr/bin/perl
# restrict_recipient.t - Postfix's built-in recipient restrictions from an
# untrusted client (127.0.0.1 outside mynetworks) against a relay set-up
# of every address class: local (mydestination, local_recipient_maps),
# virtual alias, virtual mailbox and relay (relay_recipient_maps)
# domains.  Relay control (permit_auth_destination, reject_unauth_
# destination 554 5.7.1, defer_unauth_destination 454 4.7.1,
# relay_domains_reject_code), the recipient tables (the implicit
# smtpd_reject_unlisted_recipient and reject_unlisted_recipient with
# their "User unknown in ... table" replies and reply codes),
# reject_non_fqdn_recipient, reject_multi_recipient_bounce at RCPT and at
# DATA, and the open-relay battery: sender-specified routing and other
# address tricks never relay.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest;

my $dir = File::Temp::tempdir('restrict-rcpt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }
write_file("$dir/local", "alice x\n");
write_file("$dir/valias", "known\@valias.example.test alice\@mx.example.test\n");
write_file("$dir/vmbox", "box\@vmbox.example.test vmbox.example.test/box/\n");
write_file("$dir/relayrcpt", "ok\@relay.example.test x\nok\@sub.relay.example.test x\n");

my %L = (
	smtp     => '',
	strict   => '-o smtpd_relay_restrictions= -o smtpd_recipient_restrictions=reject_unauth_destination',
	relay550 => '-o smtpd_relay_restrictions=reject_unauth_destination -o relay_domains_reject_code=550',
	defer550 => '-o relay_domains_reject_code=550',
	permit   => '-o smtpd_relay_restrictions=permit_auth_destination,reject',
	codes    => '-o unknown_local_recipient_reject_code=450 -o unknown_relay_recipient_reject_code=551'
		    . ' -o unknown_virtual_mailbox_reject_code=553 -o unknown_virtual_alias_reject_code=554',
	notable  => '-o show_user_unknown_table_name=no',
	nounl    => '-o smtpd_reject_unlisted_recipient=no',
	explicit => '-o smtpd_reject_unlisted_recipient=no -o smtpd_recipient_restrictions=reject_unlisted_recipient',
	fqdn     => '-o mynetworks=127.0.0.0/8 -o smtpd_recipient_restrictions=reject_non_fqdn_recipient',
	bounce   => '-o smtpd_recipient_restrictions=reject_multi_recipient_bounce',
	bdata    => '-o smtpd_data_restrictions=reject_multi_recipient_bounce',
	untrust  => '-o allow_untrusted_routing=yes -o smtpd_relay_restrictions=permit_auth_destination,reject',
);
my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '192.0.2.0/24',
	mydestination => '$myhostname, localhost',
	relay_domains => 'relay.example.test',
	virtual_alias_domains => 'valias.example.test',
	virtual_alias_maps => "texthash:$dir/valias",
	virtual_mailbox_domains => 'vmbox.example.test',
	virtual_mailbox_maps => "texthash:$dir/vmbox",
	local_recipient_maps => "texthash:$dir/local",
	relay_recipient_maps => "texthash:$dir/relayrcpt",
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000 }, listeners => \%L);

# A session on a listener: EHLO and MAIL done.
sub session {
	my ($listener, $from) = @_;
	my $c = $t->smtp($listener);
	$c->read_reply;
	$c->cmd('EHLO client.example.org');
	my $code = $c->cmd('MAIL FROM:<' . ($from // 'sender@example.org') . '>');
	die "MAIL refused on $listener" unless $code eq '250';
	return $c;
}

sub rcpt_reply {
	my ($listener, $rcpt) = @_;
	my $c = session($listener);
	my ($code, $text) = $c->cmd("RCPT TO:<$rcpt>");
	$c->cmd('QUIT');
	$c->close;
	return $text // '';
}

sub rcpt_is {
	my ($listener, $rcpt, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(rcpt_reply($listener, $rcpt), $want, $name);
}

my $OK = '250 2.1.5 Ok';
my $unknown = sub { "550 5.1.1 <$_[0]>: Recipient address rejected: User unknown in $_[1] table" };

# ---- relay control and the recipient tables (the default lists) ------------

rcpt_is('smtp', 'alice@mx.example.test', $OK, 'local: a user in local_recipient_maps');
rcpt_is('smtp', 'ALICE@MX.EXAMPLE.TEST', $OK, 'local: case does not matter');
rcpt_is('smtp', 'bob@mx.example.test', $unknown->('bob@mx.example.test', 'local recipient'),
	'local: an unknown user -> 550 5.1.1 User unknown in local recipient table');
rcpt_is('smtp', 'bob@localhost', $unknown->('bob@localhost', 'local recipient'),
	'local: every mydestination domain');
rcpt_is('smtp', 'postmaster@mx.example.test', $OK, 'local: postmaster is always accepted');
rcpt_is('smtp', 'MAILER-DAEMON@mx.example.test', $OK, 'local: so is MAILER-DAEMON');
rcpt_is('smtp', 'ok@relay.example.test', $OK, 'relay: a user in relay_recipient_maps');
rcpt_is('smtp', 'no@relay.example.test', $unknown->('no@relay.example.test', 'relay recipient'),
	'relay: others -> User unknown in relay recipient table');
rcpt_is('smtp', 'ok@sub.relay.example.test', $OK, 'relay: relay_domains covers subdomains');
rcpt_is('smtp', 'box@vmbox.example.test', $OK, 'virtual mailbox: a known mailbox');
rcpt_is('smtp', 'nobox@vmbox.example.test', $unknown->('nobox@vmbox.example.test', 'virtual mailbox'),
	'virtual mailbox: others -> User unknown in virtual mailbox table');
rcpt_is('smtp', 'known@valias.example.test', $OK, 'virtual alias: an address with a mapping');
rcpt_is('smtp', 'who@valias.example.test', $unknown->('who@valias.example.test', 'virtual alias'),
	'virtual alias: others -> User unknown in virtual alias table');
rcpt_is('smtp', 'x@elsewhere.example', '454 4.7.1 <x@elsewhere.example>: Relay access denied',
	'default relay restrictions: an untrusted client -> 454 4.7.1 Relay access denied');

rcpt_is('strict', 'x@elsewhere.example', '554 5.7.1 <x@elsewhere.example>: Relay access denied',
	'reject_unauth_destination -> 554 5.7.1 Relay access denied');
rcpt_is('strict', 'alice@mx.example.test', $OK, 'reject_unauth_destination: local passes');
rcpt_is('strict', 'ok@relay.example.test', $OK, 'reject_unauth_destination: relay_domains passes');
rcpt_is('strict', 'box@vmbox.example.test', $OK, 'reject_unauth_destination: virtual mailbox passes');
rcpt_is('relay550', 'x@elsewhere.example', '550 5.7.1 <x@elsewhere.example>: Relay access denied',
	'relay_domains_reject_code = 550');
rcpt_is('defer550', 'x@elsewhere.example', '450 4.7.1 <x@elsewhere.example>: Relay access denied',
	'defer_unauth_destination answers relay_domains_reject_code - 100');
rcpt_is('permit', 'ok@relay.example.test', $OK, 'permit_auth_destination: relay domain');
rcpt_is('permit', 'x@elsewhere.example',
	'554 5.7.1 <x@elsewhere.example>: Recipient address rejected: Access denied',
	'permit_auth_destination: others go on to reject');

# ---- reply codes and switches -------------------------------------------------------

rcpt_is('codes', 'bob@mx.example.test',
	'450 4.1.1 <bob@mx.example.test>: Recipient address rejected: User unknown in local recipient table',
	'unknown_local_recipient_reject_code = 450');
rcpt_is('codes', 'no@relay.example.test',
	'551 5.1.1 <no@relay.example.test>: Recipient address rejected: User unknown in relay recipient table',
	'unknown_relay_recipient_reject_code');
rcpt_is('codes', 'nobox@vmbox.example.test',
	'553 5.1.1 <nobox@vmbox.example.test>: Recipient address rejected: User unknown in virtual mailbox table',
	'unknown_virtual_mailbox_reject_code');
rcpt_is('codes', 'who@valias.example.test',
	'554 5.1.1 <who@valias.example.test>: Recipient address rejected: User unknown in virtual alias table',
	'unknown_virtual_alias_reject_code');
rcpt_is('notable', 'bob@mx.example.test',
	'550 5.1.1 <bob@mx.example.test>: Recipient address rejected: User unknown',
	'show_user_unknown_table_name = no');
rcpt_is('nounl', 'bob@mx.example.test', $OK, 'smtpd_reject_unlisted_recipient = no');
rcpt_is('explicit', 'bob@mx.example.test', $unknown->('bob@mx.example.test', 'local recipient'),
	'reject_unlisted_recipient in a list');

# ---- reject_non_fqdn_recipient ------------------------------------------------

rcpt_is('fqdn', 'user@nodots', '504 5.5.2 <user@nodots>: Recipient address rejected: need fully-qualified address',
	'reject_non_fqdn_recipient: a domain without a dot');
rcpt_is('fqdn', 'user@bad_.example', $OK, 'reject_non_fqdn_recipient: "_" is valid host name syntax');
rcpt_is('fqdn', 'user@[192.0.2.1]', $OK, 'reject_non_fqdn_recipient: an address literal passes');
rcpt_is('fqdn', 'user@example.org.', $OK, 'reject_non_fqdn_recipient: a trailing dot is fine');

# ---- reject_multi_recipient_bounce ----------------------------------------------

{
	my $c = session('bounce', '');
	my ($code, $text) = $c->cmd('RCPT TO:<alice@mx.example.test>');
	is($text, $OK, 'multi-recipient bounce: the first recipient of MAIL FROM:<> passes');
	($code, $text) = $c->cmd('RCPT TO:<box@vmbox.example.test>');
	is($text, '550 5.5.3 <box@vmbox.example.test>: Recipient address rejected: Multi-recipient bounce',
	   '... a second one -> 550 5.5.3 Multi-recipient bounce');
	$c->close;
	$c = session('bounce');
	$c->cmd('RCPT TO:<alice@mx.example.test>');
	($code, $text) = $c->cmd('RCPT TO:<box@vmbox.example.test>');
	is($text, $OK, '... a sender other than <> may have several');
	$c->close;
}
{
	my $c = session('bdata', '');
	$c->cmd('RCPT TO:<alice@mx.example.test>');
	my ($code, $text) = $c->cmd('RCPT TO:<box@vmbox.example.test>');
	is($code, '250', 'in smtpd_data_restrictions: RCPT passes');
	($code, $text) = $c->cmd('DATA');
	is($text, '550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce',
	   '... DATA with two recipients -> 550 5.5.3 <DATA>: Data command rejected');
	$c->close;
	$c = session('bdata', '');
	$c->cmd('RCPT TO:<alice@mx.example.test>');
	($code, $text) = $c->cmd('DATA');
	is($code, '354', '... DATA with one recipient goes on');
	$c->close;
}

# ---- the open-relay battery ----------------------------------------------------
# None of these may be accepted from an untrusted client: each would make
# this host forward mail to elsewhere.example.

my @tricks = (
	'x@elsewhere.example',
	'X@ELSEWHERE.EXAMPLE',
	'x@elsewhere.example.',
	'user%elsewhere.example@mx.example.test',
	'user%elsewhere.example@relay.example.test',
	'user%elsewhere.example@localhost',
	'elsewhere.example!user@mx.example.test',
	'elsewhere.example!user@relay.example.test',
	'"user@elsewhere.example"@mx.example.test',
	'"user@elsewhere.example"@relay.example.test',
	'"user%elsewhere.example"@relay.example.test',
	'user\@elsewhere.example@mx.example.test',
	'@mx.example.test:user@elsewhere.example',
	'@mx.example.test,@relay.example.test:user@elsewhere.example',
	'user@elsewhere.example@mx.example.test',
	'user@[192.0.2.99]',
	'user@[IPv6:2001:db8::99]',
	'user@relay.example.test.elsewhere.example',
	'user@elsewhere.example\@relay.example.test',
	'user@mx.example.test@elsewhere.example',
);
for my $rcpt (@tricks) {
	for my $listener ('smtp', 'strict', 'permit') {
		my $reply = rcpt_reply($listener, $rcpt);
		unlike($reply, qr/^2/, "no relay ($listener): <$rcpt> -> " . ($reply =~ s/\n.*//sr));
	}
}
rcpt_is('untrust', 'user%elsewhere.example@relay.example.test',
	'550 5.1.1 <user%elsewhere.example@relay.example.test>: Recipient address rejected: User unknown in relay recipient table',
	'allow_untrusted_routing = yes: routing through a relay_domains domain passes relay control; the relay recipient table decides (as Postfix)');
rcpt_is('untrust', 'user%elsewhere.example@elsewhere.example',
	'554 5.7.1 <user%elsewhere.example@elsewhere.example>: Recipient address rejected: Access denied',
	'... but not through any other domain');

# the server is still alive after all that
rcpt_is('smtp', 'alice@mx.example.test', $OK, 'the server still answers');
unlike($t->log_text, qr/killed by signal|panic/, 'no worker crashed');

done_testing;
