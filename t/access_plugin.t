#!/usr/bin/perl
# The access plugin (filters/access): Postfix's check_*_access family as
# a plugin, loaded without being named (sluice_builtin_plugins), against
# a real sluice.  Each restriction reads texthash tables written here;
# the SMTP replies (code, enhanced code, text) are asserted, and every
# access(5) action's effect where it lands: the log lines, the queue
# file (hold/, the PREPEND header in the stored message, the recipients
# after REDIRECT and BCC, the filter record of FILTER), the message
# dropped by DISCARD.  The MX/NS/A checks ask a real DNS server (dnsmasq
# on a free loopback port, given to sluice with dns_servers): MX host
# names and addresses, a domain without MX, a null MX, name servers found
# in a parent domain, a helo name's address, OK refused from such tables,
# and a DNS failure.  Last, `sluice check` shows the plugin loading
# without being named, once when named, and not at all when
# sluice_builtin_plugins is empty.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use SluiceTest qw(wait_until);
use DnsTest qw(start_dnsmasq wire_name);

# ---- a DNS server ------------------------------------------------------------

my $dns_port = start_dnsmasq(
	     '--local=/test/',
	     '--server=/broken.test/#',      # no server for it: REFUSED
	     '--mx-host=mxdom.test,mx1.mxdom.test,10',
	     '--host-record=mx1.mxdom.test,127.0.0.10',
	     '--mx-host=mxdom2.test,mx.mxdom2.test,10',
	     '--host-record=mx.mxdom2.test,127.0.0.12',
	     '--host-record=nomx.test,192.0.2.55',
	     '--dns-rr=nullmx.test,15,000000',
	     '--mx-host=okdom.test,mx.okdom.test,10',
	     '--host-record=mx.okdom.test,127.0.0.14',
	     '--dns-rr=nsdom.test,2,' . wire_name('ns.nsdom.test'),
	     '--host-record=ns.nsdom.test,127.0.0.15',
	     '--host-record=ahost.test,127.0.0.13');
ok($dns_port, 'dnsmasq listens');

# A client connected from a chosen loopback address.
sub client_from {
	my ($t, $local) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
					 LocalAddr => $local, Proto => 'tcp', Timeout => 10)
	    or die "connect from $local: $!";
	return bless { sock => $sock, buf => '', eof => 0, timeout => 15 },
		     'SluiceTest::Client';
}

# The queue ID of a "250 2.0.0 Ok: queued as ID" reply.
sub queued_id {
	my ($text) = @_;
	return $text =~ /queued as (\S+)/ ? $1 : undef;
}

# ---- tables and the first server --------------------------------------------

my $t = SluiceTest->new(start => 0);
my $d = $t->dir;
$t->write_file('client', <<'EOF');
127.0.0.5	REJECT
127.0.0.6	DEFER client deferred
127.0.0.7	550 5.7.2 client custom
127.0.1		REJECT net rejected
127.0.1.8	DUNNO
EOF
$t->write_file('sender', <<'EOF');
<>		550 5.7.1 no bounces here
spammer@evil.test	REJECT sender rejected
user@ext.test	REJECT bare address
EOF
$t->write_file('rcpt', <<'EOF');
reject@example.net	REJECT
rejecttext@example.net	REJECT go away
defer@example.net	DEFER
code@example.net	550 5.7.2 custom code
code4@example.net	452 4.2.2 mailbox full
digits@example.net	553 no enhanced code
ok@example.net	OK
dunno@example.net	DUNNO
dip@example.net	DEFER_IF_PERMIT try later
class@example.net	rejectclass
rname@example.net	reject
revcheck@example.net	revclass
clientcheck@example.net	clientclass
cidrcheck@example.net	cidrclass
discard@example.net	DISCARD dropped here
hold@example.net	HOLD held for review
prepend@example.net	PREPEND X-Access: tagged by table
redirect@example.net	REDIRECT other@example.org
bcc@example.net	BCC copy@example.org
filter@example.net	FILTER smtp:[127.0.0.1]:10025
warn@example.net	WARN watch this one
info@example.net	INFO just so you know
EOF
$t->write_file('reverse', "localhost\tOK\n");
$t->write_file('client2', "localhost\tREJECT by name\n127.0.0.1\tOK\n");
$t->write_file('client.cidr', "127.0.0.0/8\tREJECT cidr matched\n");
$t->set_main(
	dns_servers => "127.0.0.1:$dns_port",
	recipient_delimiter => '+',
	mynetworks => '127.0.0.0/8',
	smtpd_client_restrictions => "check_client_access texthash:$d/client",
	smtpd_helo_restrictions => 'check_helo_access inline:{ {bad.test = REJECT helo rejected} }',
	smtpd_sender_restrictions => "check_sender_access hash:$d/sender",
	smtpd_recipient_restrictions => "check_recipient_access texthash:$d/rcpt",
	smtpd_relay_restrictions => 'permit_mynetworks, reject',
	smtpd_restriction_classes => 'rejectclass, revclass, clientclass, cidrclass',
	rejectclass => 'reject',
	clientclass => "check_client_access texthash:$d/client2",
	cidrclass => "check_client_access cidr:$d/client.cidr",
	revclass => "check_reverse_client_hostname_access texthash:$d/reverse",
);
ok(!defined $t->config('sluice_plugins'), 'main.cf names no plugin');
my ($rc, $out) = $t->sluice('map', 'build', "$d/sender");
is($rc, 0, 'the hash: sender table is built') or diag $out;
$t->start;

# ---- check_client_access --------------------------------------------------

sub rcpt_reply_from {
	my ($local, %m) = @_;
	my $c = client_from($t, $local);
	$c->hello($m{helo} // 'client.test');
	my ($code, $text) = $c->cmd('MAIL FROM:<' . ($m{from} // 'sender@ok.test') . '>');
	($code, $text) = $c->cmd('RCPT TO:<' . ($m{to} // 'rcpt@example.net') . '>')
	    if $code == 250;
	$c->cmd('QUIT');
	return $text;
}

is(rcpt_reply_from('127.0.0.5'),
   '554 5.7.1 <unknown[127.0.0.5]>: Client host rejected: Access denied',
   'check_client_access REJECT: Postfix reply, at RCPT (smtpd_delay_reject)');
is(rcpt_reply_from('127.0.0.6'),
   '450 4.7.1 <unknown[127.0.0.6]>: Client host rejected: client deferred',
   'DEFER with text');
is(rcpt_reply_from('127.0.0.7'),
   '550 5.7.2 <unknown[127.0.0.7]>: Client host rejected: client custom',
   'a numeric action with its enhanced code');
is(rcpt_reply_from('127.0.1.9'),
   '554 5.7.1 <unknown[127.0.1.9]>: Client host rejected: net rejected',
   'an address prefix matches');
like(rcpt_reply_from('127.0.1.8'), qr/^250 /,
     'DUNNO at the full address stops the prefix search');
like(rcpt_reply_from('127.0.0.1'), qr/^250 /, 'an unlisted client passes');

# ---- check_helo_access, check_sender_access -------------------------------

is(rcpt_reply_from('127.0.0.1', helo => 'host.bad.test'),
   '554 5.7.1 <host.bad.test>: Helo command rejected: helo rejected',
   'check_helo_access (inline: table): a parent domain entry matches');
is(rcpt_reply_from('127.0.0.1', from => 'spammer@evil.test'),
   '554 5.7.1 <spammer@evil.test>: Sender address rejected: sender rejected',
   'check_sender_access (hash: table): the address');
is(rcpt_reply_from('127.0.0.1', from => 'user+tag@ext.test'),
   '554 5.7.1 <user+tag@ext.test>: Sender address rejected: bare address',
   'check_sender_access: user@domain after user+ext@domain (recipient_delimiter)');
is(rcpt_reply_from('127.0.0.1', from => ''),
   '550 5.7.1 <>: Sender address rejected: no bounces here',
   'check_sender_access: the null sender is looked up as <>');

# ---- check_recipient_access: every action ---------------------------------

my $c = $t->smtp;
$c->hello('client.test');
sub rcpt_is {
	my ($to, $want, $name) = @_;
	$c->cmd('RSET');
	$c->cmd('MAIL FROM:<sender@ok.test>');
	my ($code, $text) = $c->cmd("RCPT TO:<$to>");
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return ref $want ? like($text, $want, $name) : is($text, $want, $name);
}
rcpt_is('reject@example.net',
	'554 5.7.1 <reject@example.net>: Recipient address rejected: Access denied',
	'REJECT: access_map_reject_code, 5.7.1, "Access denied"');
rcpt_is('rejecttext@example.net',
	'554 5.7.1 <rejecttext@example.net>: Recipient address rejected: go away',
	'REJECT text');
rcpt_is('defer@example.net',
	'450 4.7.1 <defer@example.net>: Recipient address rejected: Access denied',
	'DEFER: access_map_defer_code');
rcpt_is('code@example.net',
	'550 5.7.2 <code@example.net>: Recipient address rejected: custom code',
	'5NN d.d.d text');
rcpt_is('code4@example.net',
	'452 4.2.2 <code4@example.net>: Recipient address rejected: mailbox full',
	'4NN d.d.d text');
rcpt_is('digits@example.net',
	'553 5.7.1 <digits@example.net>: Recipient address rejected: no enhanced code',
	'5NN text: the enhanced code defaults to 5.7.1');
rcpt_is('ok@example.net', qr/^250 /, 'OK');
rcpt_is('dunno@example.net', qr/^250 /, 'DUNNO');
rcpt_is('dip@example.net',
	'450 4.7.1 <dip@example.net>: Recipient address rejected: try later',
	'DEFER_IF_PERMIT: deferred when the lists permit');
rcpt_is('class@example.net',
	'554 5.7.1 <class@example.net>: Recipient address rejected: Access denied',
	'a restriction class named by the table');
rcpt_is('rname@example.net',
	'554 5.7.1 <rname@example.net>: Recipient address rejected: Access denied',
	'a restriction name as the action');
rcpt_is('Reject@EXAMPLE.net',
	'554 5.7.1 <Reject@EXAMPLE.net>: Recipient address rejected: Access denied',
	'lookups are case-insensitive');
rcpt_is('clientcheck@example.net',
	'554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: by name',
	'check_client_access: the client name before its address');
rcpt_is('cidrcheck@example.net',
	'554 5.7.1 <localhost[127.0.0.1]>: Client host rejected: cidr matched',
	'check_client_access with a cidr: table');
my $mark = $t->log_mark;
rcpt_is('revcheck@example.net', '451 4.3.5 Server configuration error',
	'check_reverse_client_hostname_access may not answer OK');
ok($t->wait_log(qr/restriction check_reverse_client_hostname_access returns OK for localhost/,
		10, from => $mark), '... and the warning says so');
$c->cmd('QUIT');

# Actions whose effect is in the queue or the log: one message each.
sub deliver_to {
	my ($to, %m) = @_;
	my $s = $t->smtp;
	$s->hello('client.test');
	my ($code, $text) = $s->transaction(from => 'sender@ok.test', to => [$to],
					    body => "Subject: access test\r\n\r\nbody\r\n");
	$s->cmd('QUIT');
	return ($code, $text);
}

sub queue_file_of {
	my ($text, $sub) = @_;
	my $id = queued_id($text) // return;
	return SluiceTest::read_queue_file($t->queue_path($id, $sub));
}

$mark = $t->log_mark;
my ($code, $text) = deliver_to('hold@example.net');
like($text, qr/^250 2\.0\.0 Ok: queued as/, 'HOLD: accepted');
my $q = queue_file_of($text, 'hold');
ok($q && $q->{complete}, 'HOLD: the message is in hold/');
ok($t->wait_log(qr/hold: RCPT from localhost\[127\.0\.0\.1\]: <hold\@example\.net>: Recipient address held for review/,
		10, from => $mark), 'HOLD: logged as Postfix does');

($code, $text) = deliver_to('prepend@example.net');
$q = queue_file_of($text);
like($q && $q->{content}, qr/^X-Access: tagged by table\n/m,
     'PREPEND: the header is in the stored message');

($code, $text) = deliver_to('redirect@example.net');
$q = queue_file_of($text);
is_deeply([map { $_->{addr} } @{ $q ? $q->{rcpt} : [] }], ['other@example.org'],
	  'REDIRECT: the recipients are replaced');

($code, $text) = deliver_to('bcc@example.net');
$q = queue_file_of($text);
is_deeply([sort map { $_->{addr} } @{ $q ? $q->{rcpt} : [] }],
	  ['bcc@example.net', 'copy@example.org'], 'BCC: a recipient is added');

($code, $text) = deliver_to('filter@example.net');
$q = queue_file_of($text);
is($q && $q->{rec}{filter} && $q->{rec}{filter}[0], 'smtp:[127.0.0.1]:10025',
   'FILTER: the content filter next hop is in the queue file');

$mark = $t->log_mark;
my @before = $t->queue_files;
($code, $text) = deliver_to('discard@example.net');
like($text, qr/^250 /, 'DISCARD: the client is told the message is accepted');
ok($t->wait_log(qr/discard: RCPT from localhost\[127\.0\.0\.1\]: <discard\@example\.net>: Recipient address dropped here/,
		10, from => $mark), 'DISCARD: logged');
my @after = $t->queue_files;
is(scalar @after, scalar @before, 'DISCARD: nothing is queued');

$mark = $t->log_mark;
($code, $text) = deliver_to('warn@example.net');
like($text, qr/^250 /, 'WARN: accepted');
ok($t->wait_log(qr/warn: RCPT from localhost\[127\.0\.0\.1\]: watch this one; from=<sender\@ok\.test> to=<warn\@example\.net>/,
		10, from => $mark), 'WARN: logged');
($code, $text) = deliver_to('info@example.net');
like($text, qr/^250 /, 'INFO: accepted');
ok($t->wait_log(qr/info: RCPT from localhost\[127\.0\.0\.1\]: just so you know; from=<sender\@ok\.test> to=<info\@example\.net>/,
		10, from => $mark), 'INFO: logged');

# A table rebuilt on disk answers the next lookup.
$t->write_file('rcpt.new', "later\@example.net\tREJECT changed on disk\n");
rename "$d/rcpt.new", "$d/rcpt" or die "rename: $!";
$c = $t->smtp;
$c->hello('client.test');
rcpt_is('later@example.net',
	'554 5.7.1 <later@example.net>: Recipient address rejected: changed on disk',
	'a table changed on disk is used without a reload');
$c->cmd('QUIT');
$t->stop;

# ---- the DNS checks --------------------------------------------------------

$t->write_file('servers', <<'EOF');
mx1.mxdom.test	REJECT bad mx host
127.0.0.12	REJECT bad mx address
192.0.2.55	REJECT no-mx domain address
mx.okdom.test	OK
ns.nsdom.test	REJECT bad name server
127.0.0.13	REJECT bad helo address
EOF
$t->set_main(
	smtpd_client_restrictions => undef,
	smtpd_sender_restrictions => "check_sender_mx_access texthash:$d/servers, "
	    . "check_sender_ns_access texthash:$d/servers",
	smtpd_helo_restrictions => "check_helo_a_access texthash:$d/servers",
	smtpd_recipient_restrictions => undef,
);
$t->start;

is(rcpt_reply_from('127.0.0.1', from => 'user@mxdom.test'),
   '554 5.7.1 <user@mxdom.test>: Sender address rejected: bad mx host',
   'check_sender_mx_access: the MX host name');
is(rcpt_reply_from('127.0.0.1', from => 'user@mxdom2.test'),
   '554 5.7.1 <user@mxdom2.test>: Sender address rejected: bad mx address',
   'check_sender_mx_access: the MX host address');
is(rcpt_reply_from('127.0.0.1', from => 'user@nomx.test'),
   '554 5.7.1 <user@nomx.test>: Sender address rejected: no-mx domain address',
   'a domain without MX is its own MX host');
like(rcpt_reply_from('127.0.0.1', from => 'user@nullmx.test'), qr/^250 /,
     'a null MX is not checked');
$mark = $t->log_mark;
is(rcpt_reply_from('127.0.0.1', from => 'user@okdom.test'),
   '451 4.3.5 Server configuration error',
   'OK from an MX table is refused');
ok($t->wait_log(qr/restriction check_sender_mx_access returns OK for user\@okdom\.test/,
		10, from => $mark), '... with a warning');
is(rcpt_reply_from('127.0.0.1', from => 'user@sub.nsdom.test'),
   '554 5.7.1 <user@sub.nsdom.test>: Sender address rejected: bad name server',
   'check_sender_ns_access: name servers from the parent domain');
is(rcpt_reply_from('127.0.0.1', helo => 'ahost.test'),
   '554 5.7.1 <ahost.test>: Helo command rejected: bad helo address',
   'check_helo_a_access: the helo name\'s address');
($rc, $out) = $t->sluice('explain', '--client', '127.0.0.1', '--helo', 'client.test',
			 '--sender', 'user@mxdom2.test', '--recipient', 'rcpt@example.net');
like($out, qr/^\s+MX hosts of mxdom2\.test: mx\.mxdom2\.test$/m,
     'sluice explain shows the MX hosts DNS gave');
like($out, qr/^\s+key mx\.mxdom2\.test: not found\n(?:\s+key \S+: not found\n)*\s+key 127\.0\.0\.12: found: REJECT bad mx address$/m,
     '... the host name keys, then its address');
like($out, qr/^RCPT: 554 5\.7\.1 <user\@mxdom2\.test>: Sender address rejected: bad mx address$/m,
     '... and the reply') or diag $out;
$mark = $t->log_mark;
like(rcpt_reply_from('127.0.0.1', from => 'user@broken.test'), qr/^250 /,
     'a DNS failure: no opinion');
ok($t->wait_log(qr/Unable to look up MX host for broken\.test/, 15, from => $mark),
   '... and it is logged');
$t->stop;

# ---- loading: sluice_builtin_plugins ----------------------------------------

($rc, $out) = $t->sluice('check');
is($rc, 0, 'sluice check: the restrictions are known without sluice_plugins')
    or diag $out;
$t->set_main(sluice_plugins => 'access');
($rc, $out) = $t->sluice('check');
is($rc, 0, 'access named in sluice_plugins as well: loaded once') or diag $out;
$t->set_main(sluice_plugins => undef, sluice_builtin_plugins => '');
($rc, $out) = $t->sluice('check');
isnt($rc, 0, 'sluice_builtin_plugins empty: the restrictions are unknown');
like($out, qr/main\.cf:\d+: unknown restriction check_sender_mx_access in smtpd_sender_restrictions; .*"access" plugin/,
     '... and sluice check names the plugin that provides them');

done_testing;
