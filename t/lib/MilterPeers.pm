# MilterPeers - the real milters sluice is tested against, each started
# by the test in a temp dir of its own, on its own port, with its own
# configuration: opendkim, clamav-milter with clamd, spamass-milter with
# spamd (Debian's packages, installed by scripts/install-deps).
#
#   use MilterPeers;
#   my $why = MilterPeers::OpenDKIM->unavailable;
#   BAIL_OUT($why) if $why;                        # never skip a peer
#   my $dkim = MilterPeers::OpenDKIM->new(domain => 'example.org')->start;
#   main.cf:  smtpd_milters = ${\ $dkim->spec }     # inet:127.0.0.1:PORT
#   my ($ok, $why) = $dkim->verify($message_text);  # a second opendkim, -t
#   my ($rc, $err) = $dkim->testmsg($message_text); # opendkim-testmsg + DNS
#
#   my $clamd  = MilterPeers::Clamd->new->start;    # EICAR + a custom sig
#   my $clamav = MilterPeers::ClamavMilter->new(clamd => $clamd)->start;
#   my $spamd  = MilterPeers::Spamd->new->start;    # Debian's rules, -L
#   my $sa     = MilterPeers::SpamassMilter->new(spamd => $spamd,
#                                                 reject => 15)->start;
#   MilterPeers::eicar(), MilterPeers::gtube()      # the test strings
#   my %msg = MilterPeers::virus_messages();        # clean, eicar, zip
#   MilterPeers::with_attachment($subj, $name, $type, $bytes)
#   MilterPeers::ndb([name, hex], ...)             # a .ndb database
#   MilterPeers::sluice_message($t, $id)           # a queued message, as
#                                                  # its seg records say
#
# What it promises:
#  - everything a peer writes lives in its temp dir (configuration, keys,
#    signature database, sockets, pid file, log); nothing is read from
#    /etc except Debian's SpamAssassin .pre files and rules;
#  - start() returns once the peer answers: a milter's TCP port accepts a
#    connection, clamd answers PING with PONG on its unix socket, spamd
#    answers PING with PONG; each wait has a deadline (generous for the
#    slow ones: clamd and spamd) and never a fixed sleep; start() dies
#    with the peer's log when it does not come up;
#  - peers that log only to syslog (opendkim, spamass-milter) log into
#    their dir/syslog when the tests run as root: they run in a private
#    mount namespace where /dev/log is a socket the harness reads (the
#    machine's /dev is untouched);
#  - stop() ends the peer (TERM, then KILL) and everything it started;
#    nothing outlives the test (END, and PR_SET_PDEATHSIG on each peer);
#  - no network: opendkim finds the signer's key in a file
#    (TestPublicKeys), and opendkim-testmsg, which only asks DNS, runs in
#    a private network namespace where dnsmasq serves the key's TXT
#    record on 127.0.0.1:53;
#  - the test strings (EICAR, GTUBE) are built at run time, so no file of
#    the repository holds them and no scanner flags the tree.
package MilterPeers;

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Compress::Zip ();
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use MIME::Base64 ();
use POSIX qw(WNOHANG);
use Socket qw(SOCK_DGRAM SOCK_STREAM);
use Time::HiRes qw(sleep time);
use SluiceTest qw(free_port slurp tcp_answers wait_until);

my %live;	# pid => peer object

sub spew {
	my ($path, $text, $mode) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh or die "$path: $!";
	chmod $mode, $path if defined $mode;
	return $path;
}

# Why the programs cannot run here, or ''.
sub missing {
	my (@progs) = @_;
	for my $p (@progs) {
		return "$p missing: run scripts/install-deps" unless -x $p;
	}
	return '';
}

# The EICAR test file (68 bytes), from its hex, and the GTUBE string.
sub eicar {
	return pack 'H*', '58354f2150254041505b345c505a58353428505e2937434329377d24'
	    . '45494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a';
}

sub gtube {
	return join '', 'XJS*C4JDBQADN1.NSBN3*2IDNEN*', 'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
}

# A ClamAV .ndb database (body signatures): one line per [name, hex];
# target type 0 = any file, offset * = anywhere.
sub ndb {
	return join '', map { "$_->[0]:0:*:$_->[1]\n" } @_;
}

# A MIME message with one attachment (its bytes, base64-encoded).
sub with_attachment {
	my ($subject, $name, $type, $bytes) = @_;
	return join "\n", 'From: sender@example.org', 'To: rcpt@example.net',
		"Subject: $subject", 'MIME-Version: 1.0',
		'Content-Type: multipart/mixed; boundary="b-sluice"', '',
		'--b-sluice', 'Content-Type: text/plain; charset=us-ascii', '',
		'See the attachment.', '', '--b-sluice',
		"Content-Type: $type; name=\"$name\"", 'Content-Transfer-Encoding: base64',
		"Content-Disposition: attachment; filename=\"$name\"", '',
		MIME::Base64::encode_base64($bytes) . '--b-sluice--', '';
}

# The messages every virus-scanning test sends: clean, EICAR in the
# body, and a zip attachment (made here) holding the EICAR file.
sub virus_messages {
	my $zipped;
	IO::Compress::Zip::zip(\eicar() => \$zipped, Name => 'eicar.com')
	    or die "zip: $IO::Compress::Zip::ZipError";
	return (
		clean => "From: sender\@example.org\nTo: rcpt\@example.net\nSubject: clean\n\nNothing to see here.\n",
		eicar => "From: sender\@example.org\nTo: rcpt\@example.net\nSubject: eicar\n\n" . eicar() . "\n",
		zip => with_attachment('zip', 'archive.zip', 'application/zip', $zipped),
	);
}

# The message sluice queued as `id` (a SluiceTest server): the
# concatenation of the queue file's seg records (docs/queue-format.md:
# after a milter changed the headers, the new header block then the
# original body), with LF line ends; '' when there is no such file.
sub sluice_message {
	my ($t, $id, $sub) = @_;
	return '' unless defined $id;
	my $q = SluiceTest::read_queue_file($t->queue_path($id, $sub)) or return '';
	my $text = join '', map { /^(\d+) (\d+)$/ ? substr($q->{bytes}, $1, $2) : '' }
	    @{ $q->{rec}{seg} || [] };
	$text =~ s/\r\n/\n/g;
	return $text;
}

# ---- the common peer -----------------------------------------------------

sub new_peer {
	my ($class, %opt) = @_;
	(my $tag = lc $class) =~ s/.*:://;
	my $dir = $opt{dir} // tempdir("milter-$tag-XXXXXX", TMPDIR => 1,
					 CLEANUP => !$ENV{SLUICE_KEEP_TMP});
	chmod 0755, $dir;
	return bless { %opt, dir => $dir, timeout => $opt{timeout} // 20 }, $class;
}

sub dir { $_[0]{dir} }
sub pid { $_[0]{pid} }
sub log_file { "$_[0]{dir}/log" }
sub log_text { join '', grep { defined } map { slurp($_) } $_[0]->logs }
sub logs { ($_[0]->log_file, "$_[0]{dir}/syslog") }

# Fork and exec argv, output appended to dir/log, in a session of its own,
# killed when the test dies; with syslog => 1, in a private mount
# namespace whose /dev/log the child's reader copies into dir/syslog.
sub spawn {
	my ($self, %o) = @_;
	my @argv = @{ $o{argv} };
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		POSIX::setsid();
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $self->log_file or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
		syscall(157, 1, 15);    # prctl(PR_SET_PDEATHSIG, SIGTERM)
		private_syslog($self->{dir}) if $o{syslog} && $> == 0;
		exec(@argv) or POSIX::_exit(127);
	}
	$self->{pid} = $pid;
	$live{$pid} = $self;
	return $pid;
}

# In the child about to exec: a mount namespace of its own where /dev is
# a small tmpfs holding the device nodes a daemon needs and a /dev/log
# datagram socket; a reader process copies what arrives into dir/syslog
# and dies with the daemon.  Best effort: on any failure the daemon
# simply runs without a log.
sub private_syslog {
	my ($dir) = @_;
	my ($SYS_unshare, $CLONE_NEWNS) = (272, 0x00020000);   # x86_64 Linux
	return unless syscall($SYS_unshare, $CLONE_NEWNS) == 0;
	my $q = sub { system(@_) == 0 };
	return unless $q->('mount', '--make-rprivate', '/');
	my $d = "$dir/dev";
	mkdir $d;
	return unless $q->('mount', '-t', 'tmpfs', '-o', 'mode=0755', 'none', $d);
	for my $n (qw(null zero random urandom)) {
		spew("$d/$n", '');
		$q->('mount', '--bind', "/dev/$n", "$d/$n") or return;
	}
	return unless $q->('mount', '--rbind', $d, '/dev');
	my $sock = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => '/dev/log') or return;
	chmod 0666, '/dev/log';
	my $reader = fork // return;
	if ($reader == 0) {
		syscall(157, 1, 9);     # dies (SIGKILL) with the daemon
		open my $out, '>>', "$dir/syslog" or POSIX::_exit(0);
		$out->autoflush(1);
		while (defined $sock->recv(my $msg, 65536)) {
			$msg =~ s/^<\d+>//;
			$msg =~ s/\0$//;
			print $out $msg, ($msg =~ /\n\z/ ? '' : "\n");
		}
		POSIX::_exit(0);
	}
	close $sock;
}

sub alive {
	my ($self) = @_;
	my $pid = $self->{pid} or return 0;
	return 1 if waitpid($pid, WNOHANG) == 0;
	$self->{exit_status} = $?;
	delete $live{$pid};
	delete $self->{pid};
	return 0;
}

# Wait for `ready` (a code ref) with the peer's deadline; die with the
# peer's log when it exits or the deadline passes.
sub wait_ready {
	my ($self, $ready, $what) = @_;
	my $ok = wait_until(sub { !$self->alive ? \0 : $ready->() ? \1 : undef },
			    $self->{timeout});
	return $self if $ok && $$ok;
	my $why = $self->alive ? "no answer within $self->{timeout}s"
			       : sprintf('exited with status %d', ($self->{exit_status} // 0) >> 8);
	$self->stop;
	die ref($self) . " ($what) did not come up: $why\n" . $self->log_text;
}

# Send `request` on a fresh stream socket and read the answer until EOF
# (or `timeout` seconds); undef when the connection fails.
sub ask {
	my ($sock, $request, $timeout) = @_;
	return undef unless $sock;
	local $SIG{PIPE} = 'IGNORE';
	syswrite($sock, $request) or return undef;
	my $sel = IO::Select->new($sock);
	my ($answer, $deadline) = ('', time + ($timeout // 5));
	while ($sel->can_read($deadline - time > 0 ? $deadline - time : 0)) {
		my $n = sysread($sock, my $chunk, 4096);
		last unless $n;
		$answer .= $chunk;
	}
	close $sock;
	return $answer;
}

sub stop {
	my ($self) = @_;
	my $pid = delete $self->{pid} or return;
	delete $live{$pid};
	kill 'TERM', -$pid, $pid;       # the peer's session: it and its children
	my $deadline = time + 15;
	while (time < $deadline) {
		last if waitpid($pid, WNOHANG) == $pid;
		sleep 0.02;
	}
	kill 'KILL', -$pid, $pid;
	waitpid($pid, WNOHANG);
	return;
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	$self->stop;
}

END {
	local ($?, $!, $@);
	$_->stop for values %live;
}

# ==========================================================================
# opendkim: signs mail from originating clients (MacroList, by default
# {daemon_name} = ORIGINATING), verifies the rest and adds
# Authentication-Results; keys from opendkim-genkey in its dir.
#
# opendkim 2.11's MacroList entry is NAME=VALUE1|VALUE2 (a data set of
# names, each with the values it may take): "daemon_name|ORIGINATING",
# as often written, is taken as one macro name and never matches.
package MilterPeers::OpenDKIM;

our @ISA = ('MilterPeers');

our $OPENDKIM = '/usr/sbin/opendkim';
our $GENKEY = '/usr/sbin/opendkim-genkey';
our $TESTMSG = '/usr/sbin/opendkim-testmsg';
our $DNSMASQ = '/usr/sbin/dnsmasq';

sub unavailable {
	my $why = MilterPeers::missing($OPENDKIM, $GENKEY);
	return $why if $why;
	return '';
}

# new(domain => 'example.org', selector => 'test', mode => 'sv',
#     macro_list => 'daemon_name=ORIGINATING', internal_hosts => ...,
#     authserv_id => 'mx.example.test', conf => { Name => value, ... },
#     key_from => $other_opendkim)   # share its key (same signer)
sub new {
	my ($class, %opt) = @_;
	my $self = MilterPeers::new_peer($class, %opt);
	$self->{domain} //= 'example.org';
	$self->{selector} //= 'test';
	$self->{mode} //= 'sv';
	$self->{macro_list} //= 'daemon_name=ORIGINATING';
	# Not loopback: a test's clients all come from 127.0.0.1, and
	# opendkim signs everything from InternalHosts (default 127.0.0.1).
	$self->{internal_hosts} //= '192.0.2.1';
	$self->{authserv_id} //= 'mx.example.test';
	$self->{port} //= MilterPeers::free_port();
	if (my $other = $opt{key_from}) {
		$self->{key} = $other->key_file;
		$self->{record} = $other->key_record;
	} else {
		$self->genkey;
	}
	MilterPeers::spew("$self->{dir}/keys", $self->key_name . ' ' . $self->key_record . "\n");
	return $self;
}

sub port { $_[0]{port} }
sub spec { "inet:127.0.0.1:$_[0]{port}" }
sub key_file { $_[0]{key} }
sub key_record { $_[0]{record} }
sub key_name { "$_[0]{selector}._domainkey.$_[0]{domain}" }

sub genkey {
	my ($self) = @_;
	my $d = $self->{dir};
	my $out = `$GENKEY -D $d -d $self->{domain} -s $self->{selector} 2>&1`;
	die "opendkim-genkey failed: $out" if $?;
	$self->{key} = "$d/$self->{selector}.private";
	# selector.txt is a zone file line: the TXT record's strings, joined.
	my $zone = MilterPeers::slurp("$d/$self->{selector}.txt") // '';
	$self->{record} = join '', $zone =~ /"([^"]*)"/g;
	die "no key record in $d/$self->{selector}.txt" unless $self->{record} =~ /p=\S/;
}

sub conf_text {
	my ($self, %o) = @_;
	my %c = (
		Mode => $o{mode} // $self->{mode},
		Socket => "inet:$self->{port}\@127.0.0.1",
		Domain => $self->{domain},
		Selector => $self->{selector},
		KeyFile => $self->{key},
		InternalHosts => $self->{internal_hosts},
		MacroList => $self->{macro_list},
		TestPublicKeys => "$self->{dir}/keys",
		AuthservID => $self->{authserv_id},
		Canonicalization => 'relaxed/simple',
		SignatureAlgorithm => 'rsa-sha256',
		# the temp dir sits in /tmp, which others may write
		RequireSafeKeys => 'false',
		Syslog => 'yes',
		SyslogSuccess => 'yes',
		LogWhy => 'yes',
		PidFile => "$self->{dir}/opendkim.pid",
		TemporaryDirectory => $self->{dir},
		%{ $self->{conf} || {} },
		%{ $o{conf} || {} },
	);
	return join '', map { "$_ $c{$_}\n" } grep { defined $c{$_} && $c{$_} ne '' } sort keys %c;
}

sub start {
	my ($self) = @_;
	my $conf = MilterPeers::spew("$self->{dir}/opendkim.conf", $self->conf_text);
	$self->spawn(argv => [$OPENDKIM, '-f', '-x', $conf], syslog => 1);
	return $self->wait_ready(sub { MilterPeers::tcp_answers($self->{port}) }, $self->spec);
}

# Verify a message (its text) with a second opendkim in test mode (-t),
# verify only, the signer's key from the key file: (1, result) when a
# signature of our domain verifies, (0, result) otherwise; result is the
# line opendkim prints ("verification (s=test, d=example.org, 2048-bit
# key) succeeded" or "... failed: reason").
sub verify {
	my ($self, $message) = @_;
	my $d = $self->{dir};
	my $n = ++$self->{verified};
	my $file = MilterPeers::spew("$d/verify-$n.eml", $message);
	my $conf = MilterPeers::spew("$d/verify.conf", join '',
		"Mode v\n", "TestPublicKeys $d/keys\n", "Syslog no\n",
		"AuthservID verifier.example.test\n", "TemporaryDirectory $d\n");
	my $out = `$OPENDKIM -x $conf -vv -t $file 2>&1`;
	my ($line) = $out =~ /^opendkim: \S+: (verification .*)$/m;
	$line //= $out;
	my $ok = $line =~ /^verification \(s=\Q$self->{selector}\E, d=\Q$self->{domain}\E, .*\) succeeded/;
	return ($ok ? 1 : 0, $line);
}

# Verify a message with opendkim-testmsg, which asks DNS for the key: in
# a private network and mount namespace (unshare), dnsmasq serves the
# key's TXT record on 127.0.0.1:53 and /etc/resolv.conf points there.
# (exit code of opendkim-testmsg, its output); exit code 0 = verified.
# Returns (undef, why) when it cannot run here.
sub testmsg {
	my ($self, $message) = @_;
	return (undef, 'opendkim-testmsg, dnsmasq and unshare need root')
	    unless $> == 0 && -x $TESTMSG && -x $DNSMASQ && -x '/usr/bin/unshare';
	my $d = $self->{dir};
	my $n = ++$self->{tested};
	my $file = MilterPeers::spew("$d/testmsg-$n.eml", $message);
	# a TXT record is strings of at most 255 bytes each
	my @chunks = unpack '(A250)*', $self->{record};
	MilterPeers::spew("$d/dnsmasq.conf", join '', "no-resolv\n", "no-hosts\n",
		"listen-address=127.0.0.1\n", "bind-interfaces\n", "port=53\n",
		"user=root\n", "pid-file=$d/dnsmasq.pid\n",
		'txt-record=' . join(',', $self->key_name, map { qq{"$_"} } @chunks) . "\n");
	MilterPeers::spew("$d/resolv.conf", "nameserver 127.0.0.1\n");
	# dnsmasq forks into the background once its socket is bound: when
	# the command returns, it answers.
	MilterPeers::spew("$d/testmsg.sh", <<"EOF");
set -e
ip link set lo up
mount --bind $d/resolv.conf /etc/resolv.conf
$DNSMASQ -C $d/dnsmasq.conf
set +e
$TESTMSG < $file
rc=\$?
kill \$(cat $d/dnsmasq.pid)
exit \$rc
EOF
	my $out = `unshare --net --mount sh $d/testmsg.sh 2>&1`;
	return ($? >> 8, $out);
}

# ==========================================================================
# clamd on a unix socket in its dir, with a signature database the test
# makes: EICAR and one custom signature (ndb, body-based).
package MilterPeers::Clamd;

our @ISA = ('MilterPeers');

our $CLAMD = '/usr/sbin/clamd';
our $CUSTOM_NAME = 'Sluice.Test.Custom';
our $CUSTOM_STRING = 'sluice-custom-test-virus-marker';

sub unavailable { MilterPeers::missing($CLAMD) }

# new(signatures => [[name, hex], ...])   # replaces the default two
sub new {
	my ($class, %opt) = @_;
	my $self = MilterPeers::new_peer($class, timeout => 120, %opt);
	$self->{signatures} //= [
		['Eicar-Test-Signature', unpack('H*', MilterPeers::eicar())],
		[$CUSTOM_NAME, unpack('H*', $CUSTOM_STRING)],
	];
	return $self;
}

sub socket_path { "$_[0]{dir}/clamd.sock" }

sub start {
	my ($self) = @_;
	my $d = $self->{dir};
	mkdir "$d/db";
	mkdir "$d/tmp";
	MilterPeers::spew("$d/db/sluice-test.ndb", MilterPeers::ndb(@{ $self->{signatures} }));
	my $conf = MilterPeers::spew("$d/clamd.conf", <<"EOF");
LocalSocket $d/clamd.sock
DatabaseDirectory $d/db
TemporaryDirectory $d/tmp
Foreground yes
LogFile $d/clamd.log
LogTime yes
PidFile $d/clamd.pid
SelfCheck 0
EOF
	# as root: stay root (the default would be the clamav user, which
	# cannot enter a test's temp dir); otherwise the current user
	MilterPeers::spew($conf, MilterPeers::slurp($conf) . "User root\n") if $> == 0;
	$self->spawn(argv => [$CLAMD, '-c', $conf]);
	return $self->wait_ready(sub { ($self->ping // '') =~ /^PONG/ }, $self->socket_path);
}

sub logs { ($_[0]->log_file, "$_[0]{dir}/clamd.log") }

sub ping {
	my ($self) = @_;
	my $s = IO::Socket::UNIX->new(Type => Socket::SOCK_STREAM(), Peer => $self->socket_path)
	    or return undef;
	return MilterPeers::ask($s, "nPING\n", 5);
}

# ==========================================================================
# clamav-milter in front of a MilterPeers::Clamd.
package MilterPeers::ClamavMilter;

our @ISA = ('MilterPeers');

our $MILTER = '/usr/sbin/clamav-milter';

sub unavailable { MilterPeers::missing($MILTER) }

# new(clamd => $clamd, on_infected => 'Reject', reject_msg => '...',
#     conf => { Name => value })
sub new {
	my ($class, %opt) = @_;
	my $self = MilterPeers::new_peer($class, %opt);
	die 'clamd => MilterPeers::Clamd needed' unless $self->{clamd};
	$self->{port} //= MilterPeers::free_port();
	$self->{on_infected} //= 'Reject';
	$self->{reject_msg} //= 'Virus found: %v';
	return $self;
}

sub port { $_[0]{port} }
sub spec { "inet:127.0.0.1:$_[0]{port}" }
sub logs { ($_[0]->log_file, "$_[0]{dir}/milter.log") }

sub start {
	my ($self) = @_;
	my $d = $self->{dir};
	my %c = (
		MilterSocket => "inet:$self->{port}\@127.0.0.1",
		ClamdSocket => 'unix:' . $self->{clamd}->socket_path,
		Foreground => 'yes',
		User => $> == 0 ? 'root' : undef,
		PidFile => "$d/milter.pid",
		TemporaryDirectory => $d,
		LogFile => "$d/milter.log",
		LogTime => 'yes',
		LogInfected => 'Full',
		LogClean => 'Full',
		OnInfected => $self->{on_infected},
		RejectMsg => $self->{reject_msg},
		OnClean => 'Accept',
		OnFail => 'Defer',
		AddHeader => 'Replace',
		%{ $self->{conf} || {} },
	);
	my $conf = MilterPeers::spew("$d/clamav-milter.conf",
		join '', map { "$_ $c{$_}\n" } grep { defined $c{$_} } sort keys %c);
	$self->spawn(argv => [$MILTER, '-c', $conf]);
	return $self->wait_ready(sub { MilterPeers::tcp_answers($self->{port}) }, $self->spec);
}

# ==========================================================================
# spamd with Debian's SpamAssassin rules (/usr/share/spamassassin, the
# package's; sa-update never runs), local tests only (-L), no Bayes, on
# a loopback port.
package MilterPeers::Spamd;

our @ISA = ('MilterPeers');

our $SPAMD = '/usr/sbin/spamd';
our $RULES = '/usr/share/spamassassin';
our $SITE = '/etc/spamassassin';

sub unavailable {
	my $why = MilterPeers::missing($SPAMD);
	return $why if $why;
	return "$RULES missing: install spamassassin" unless -d $RULES;
	return "no user 'debian-spamd' (the spamd package makes it)"
	    if $> == 0 && !defined getpwnam('debian-spamd');
	return '';
}

# new(local_cf => "extra lines\n")
sub new {
	my ($class, %opt) = @_;
	my $self = MilterPeers::new_peer($class, timeout => 120, %opt);
	$self->{port} //= MilterPeers::free_port();
	return $self;
}

sub port { $_[0]{port} }

sub start {
	my ($self) = @_;
	my $d = $self->{dir};
	# The site config: Debian's .pre files (they load the plugins,
	# Check among them) and our local.cf.
	mkdir "$d/site";
	opendir my $dh, $SITE or die "$SITE: $!";
	for my $pre (grep { /\.pre$/ } readdir $dh) {
		MilterPeers::spew("$d/site/$pre", MilterPeers::slurp("$SITE/$pre") // '');
	}
	MilterPeers::spew("$d/site/local.cf", "use_bayes 0\nbayes_auto_learn 0\n"
			  . "skip_rbl_checks 1\n" . ($self->{local_cf} // ''));
	mkdir "$d/home";
	my @user;
	if ($> == 0) {
		my $uid = getpwnam('debian-spamd');
		chown $uid, -1, "$d/home";
		@user = ('-u', 'debian-spamd');
	}
	$self->spawn(argv => [$SPAMD, '-L', '-x', '-i', '127.0.0.1', '-A', '127.0.0.1',
			      '-p', $self->{port}, '-m', 2, @user, '-H', "$d/home",
			      '-C', $RULES, "--siteconfigpath=$d/site", '-s', 'stderr',
			      '-r', "$d/spamd.pid"]);
	return $self->wait_ready(sub { ($self->ping // '') =~ /^SPAMD\/[\d.]+ 0 PONG/ },
				 "127.0.0.1:$self->{port}");
}

sub ping {
	my ($self) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
				      Proto => 'tcp', Timeout => 2) or return undef;
	return MilterPeers::ask($s, "PING SPAMC/1.5\r\n\r\n", 10);
}

# ==========================================================================
# spamass-milter in front of a MilterPeers::Spamd: reject => N rejects a
# score of N or more (spamass-milter -r); without it, spam is tagged.
package MilterPeers::SpamassMilter;

our @ISA = ('MilterPeers');

our $MILTER = '/usr/sbin/spamass-milter';
our $SPAMC = '/usr/bin/spamc';

sub unavailable { MilterPeers::missing($MILTER, $SPAMC) }

# new(spamd => $spamd, reject => 15, args => [...extra milter options])
sub new {
	my ($class, %opt) = @_;
	my $self = MilterPeers::new_peer($class, %opt);
	die 'spamd => MilterPeers::Spamd needed' unless $self->{spamd};
	$self->{port} //= MilterPeers::free_port();
	return $self;
}

sub port { $_[0]{port} }
sub spec { "inet:127.0.0.1:$_[0]{port}" }

sub start {
	my ($self) = @_;
	my $d = $self->{dir};
	$self->spawn(syslog => 1, argv => [$MILTER, '-p', "inet:$self->{port}\@127.0.0.1",
		'-P', "$d/spamass-milter.pid",
		(defined $self->{reject} ? ('-r', $self->{reject}) : ()),
		@{ $self->{args} || [] },
		'--', '-d', '127.0.0.1', '-p', $self->{spamd}->port]);
	return $self->wait_ready(sub { MilterPeers::tcp_answers($self->{port}) }, $self->spec);
}

1;
