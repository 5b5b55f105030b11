#!/usr/bin/perl
# restrict_sender.t - Postfix's built-in sender restrictions, without DNS
# (reject_unknown_sender_domain against a DNS server: restrict_dns.t):
# reject_non_fqdn_sender (504 5.5.2), reject_unlisted_sender and the
# implicit smtpd_reject_unlisted_sender (550 5.1.0 "User unknown in ...
# table"), the smtpd_sender_login_maps family for a client that has not
# logged in ("553 5.7.1 ... not logged in" once AUTH lets
# smtpd_sasl_auth_enable = yes be set; until then, as in Postfix without
# SASL, no effect and a warning; the authenticated cases wait for AUTH), reject_unknown_sender_domain for a local domain (no lookup),
# and silence for the null sender.  Replies come at RCPT
# (smtpd_delay_reject = yes).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp ();
use SluiceTest;

my $dir = File::Temp::tempdir('restrict-sender-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $dir;
sub write_file { my ($p, $s) = @_; open my $fh, '>', $p or die "$p: $!"; print $fh $s; close $fh }
write_file("$dir/local", "alice x\nowned x\n");
write_file("$dir/logins", "owned\@mx.example.test alice\n\@corp.example.org bob, carol\n");
write_file("$dir/vmbox", "box\@vmbox.example.test vmbox.example.test/box/\n");

my $snd = sub { "-o smtpd_sender_restrictions=$_[0]" };
my %L = (
	fqdn     => $snd->('reject_non_fqdn_sender'),
	fqdn_504 => $snd->('reject_non_fqdn_sender') . ' -o non_fqdn_reject_code=550',
	unlisted => $snd->('reject_unlisted_sender'),
	implicit => '-o smtpd_reject_unlisted_sender=yes',
	unauth   => $snd->('reject_unauthenticated_sender_login_mismatch'),
	both     => $snd->('reject_sender_login_mismatch'),
	known    => $snd->('reject_known_sender_login_mismatch'),
	auth     => $snd->('reject_authenticated_sender_login_mismatch'),
	unknown  => $snd->('reject_unknown_sender_domain'),
);
# Once AUTH exists, these restrictions need SASL enabled (Postfix ignores
# them otherwise).
my %sasl;
{
	my $probe = SluiceTest->new(main => {}, listeners => { smtp => "" }, start => 0);
	my ($rc, $out) = $probe->sluice('conf', '-d', 'smtpd_sasl_auth_enable');
	$sasl{smtpd_sasl_auth_enable} = 'yes' if $rc == 0 && $out =~ /^smtpd_sasl_auth_enable =/m;
}
$L{nosasl} = $snd->('reject_sender_login_mismatch') . ' -o smtpd_sasl_auth_enable=no' if %sasl;
my $t = SluiceTest->new(main => {
	smtpd_peername_lookup => 'no',
	mynetworks => '127.0.0.0/8',
	local_recipient_maps => "texthash:$dir/local",
	virtual_mailbox_domains => 'vmbox.example.test',
	virtual_mailbox_maps => "texthash:$dir/vmbox",
	smtpd_sender_login_maps => "texthash:$dir/logins",
	smtpd_soft_error_limit => 1000,
	smtpd_hard_error_limit => 1000, %sasl }, listeners => \%L);

# MAIL FROM:<sender>, RCPT TO a known local user: the first reply that is
# not 250, or RCPT's.
sub sender_reply {
	my ($listener, $sender) = @_;
	my $c = $t->smtp($listener);
	$c->read_reply;
	$c->cmd('EHLO client.example.org');
	my @r;
	for my $cmd ("MAIL FROM:<$sender>", 'RCPT TO:<alice@mx.example.test>') {
		@r = $c->cmd($cmd);
		last unless defined $r[0] && $r[0] eq '250';
	}
	$c->cmd('QUIT');
	$c->close;
	return $r[1] // '';
}

sub sender_is {
	my ($listener, $sender, $want, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is(sender_reply($listener, $sender), $want, $name);
}

my $OK = '250 2.1.5 Ok';

# ---- reject_non_fqdn_sender ---------------------------------------------------

sender_is('fqdn', 'user@host.example.org', $OK, 'non_fqdn: a qualified sender passes');
sender_is('fqdn', 'user@nodots',
	  '504 5.5.2 <user@nodots>: Sender address rejected: need fully-qualified address',
	  'non_fqdn: a domain without a dot -> 504 5.5.2');
# a domain that is no host name never reaches the restriction: the
# SMTP server refuses it at MAIL, as Postfix's smtpd does
sender_is('fqdn', 'user@bad!dom.example', '501 5.1.7 Bad sender address syntax',
	  'non_fqdn: an invalid domain is refused at MAIL (501 5.1.7)');
sender_is('fqdn', 'user@[192.0.2.1]', $OK, 'non_fqdn: an address literal passes');
sender_is('fqdn', 'user@host.example.org.', $OK, 'non_fqdn: a trailing dot is fine');
sender_is('fqdn', '', $OK, 'non_fqdn: the null sender is never checked');
sender_is('fqdn_504', 'user@nodots',
	  '550 5.5.2 <user@nodots>: Sender address rejected: need fully-qualified address',
	  'non_fqdn_reject_code = 550');

# ---- reject_unlisted_sender ----------------------------------------------------

sender_is('unlisted', 'alice@mx.example.test', $OK, 'unlisted: a known local sender');
sender_is('unlisted', 'ghost@mx.example.test',
	  '550 5.1.0 <ghost@mx.example.test>: Sender address rejected: User unknown in local recipient table',
	  'unlisted: an unknown local sender -> 550 5.1.0');
sender_is('unlisted', 'nobox@vmbox.example.test',
	  '550 5.1.0 <nobox@vmbox.example.test>: Sender address rejected: User unknown in virtual mailbox table',
	  'unlisted: an unknown virtual mailbox sender');
sender_is('unlisted', 'someone@example.org', $OK, 'unlisted: remote senders are not checked');
sender_is('implicit', 'ghost@mx.example.test',
	  '550 5.1.0 <ghost@mx.example.test>: Sender address rejected: User unknown in local recipient table',
	  'smtpd_reject_unlisted_sender = yes checks without a restriction');
sender_is('implicit', 'alice@mx.example.test', $OK, '... and lets known senders pass');

# ---- smtpd_sender_login_maps without a login -------------------------------------

if ($sasl{smtpd_sasl_auth_enable}) {
	my $nli = sub { "553 5.7.1 <$_[0]>: Sender address rejected: not logged in" };
	sender_is('unauth', 'owned@mx.example.test', $nli->('owned@mx.example.test'),
		  'unauthenticated mismatch: an owned sender without login -> 553 5.7.1 not logged in');
	sender_is('unauth', 'anyone@corp.example.org', $nli->('anyone@corp.example.org'),
		  'unauthenticated mismatch: an @domain entry owns the whole domain');
	sender_is('unauth', 'free@example.org', $OK, 'unauthenticated mismatch: an unowned sender passes');
	sender_is('unauth', '', $OK, 'unauthenticated mismatch: the null sender passes');
	sender_is('both', 'owned@mx.example.test', $nli->('owned@mx.example.test'),
		  'reject_sender_login_mismatch: the unauthenticated half');
	sender_is('known', 'owned@mx.example.test', $nli->('owned@mx.example.test'),
		  'reject_known_sender_login_mismatch: without login like the unauthenticated one');
	sender_is('known', 'free@example.org', $OK, 'reject_known_sender_login_mismatch: unowned passes');
	sender_is('auth', 'owned@mx.example.test', $OK,
		  'reject_authenticated_sender_login_mismatch: says nothing without a login');
	sender_is('nosasl', 'owned@mx.example.test', $OK,
		  'smtpd_sasl_auth_enable = no: the login restrictions are ignored');
} else {
	# No AUTH yet: smtpd_sasl_auth_enable reads as Postfix's default, no,
	# and Postfix then ignores these restrictions with a warning.
	for my $l (qw(unauth both known auth)) {
		sender_is($l, 'owned@mx.example.test', $OK,
			  "$l: no effect while smtpd_sasl_auth_enable = no (no AUTH yet)");
	}
	like($t->log_text, qr/warning: restriction `reject_sender_login_mismatch' ignored: no SASL support/,
	     '... with Postfix\'s warning');
}

# ---- reject_unknown_sender_domain without DNS ------------------------------------------

sender_is('unknown', 'alice@mx.example.test', $OK, 'unknown sender domain: a local domain is not looked up');
sender_is('unknown', 'box@vmbox.example.test', $OK, 'unknown sender domain: nor a virtual mailbox domain');
sender_is('unknown', 'user@[192.0.2.1]', $OK, 'unknown sender domain: nor an address literal');
sender_is('unknown', '', $OK, 'unknown sender domain: nor the null sender');

done_testing;
