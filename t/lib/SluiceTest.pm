# SluiceTest - run a real sluice in a temporary directory and talk to it.
#
# Every integration test uses this harness:
#
#   use FindBin; use lib "$FindBin::Bin/lib";
#   use SluiceTest;
#   my $t = SluiceTest->new(main => { smtpd_banner => '...' },
#                           listeners => { smtp => '', sub => '-o x=y' });
#   my $c = $t->smtp;                 # to the 'smtp' listener
#   my ($code, $text) = $c->read_reply;
#   $c->cmd('EHLO client.example');
#   $t->reload;  $t->stop;
#
# What it promises:
#  - a temp dir with main.cf (the test's parameters over these defaults:
#    queue_directory inside the temp dir, myhostname=mx.example.test,
#    sluice_smtpd_workers=2, mail_owner = the current user, or `nobody`
#    when the tests run as root, since sluice refuses a root mail_owner;
#    plugin_directory = build/plugins) and master.cf with one line per
#    listener on a free loopback port;
#  - `sluice -c DIR run` with stdout and stderr appended to DIR/log;
#  - waiting is always on an event with a deadline: a log line
#    (wait_log), a condition (wait_until), a process exit; never a fixed
#    sleep standing in for synchronisation;
#  - no test leaves a sluice behind: the server is stopped when the object
#    goes away and, whatever happened, at END.
#
# The tests run as root in CI, so the temp dir is made world-searchable:
# the workers run as `nobody` and must reach the queue inside it.
package SluiceTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(wait_until free_port tcp_answers reply_is reply_like slurp);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $SLUICE = $ENV{SLUICE_BIN} || "$ROOT/build/bin/sluice";
our $DEFAULT_TIMEOUT = 10;

my %running;    # pid => 1: masters started here (foreground or daemon)

# ---- set-up --------------------------------------------------------------

# A TCP port nobody listens on now, on 127.0.0.1.
sub free_port {
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
				      Proto => 'tcp', Listen => 1, ReuseAddr => 1)
	    or die "cannot bind a free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# Does something accept a TCP connection on 127.0.0.1:port now?
sub tcp_answers {
	my ($port) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
				      Proto => 'tcp', Timeout => 2) or return 0;
	close $s;
	return 1;
}

# The whole file, or undef when it cannot be read.
sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	local $/;
	return scalar <$fh>;
}

sub run_user {
	return 'nobody' if $< == 0;
	return scalar getpwuid($<);
}

sub new {
	my ($class, %opt) = @_;
	my $dir = tempdir('sluice-test-XXXXXX', TMPDIR => 1,
			  CLEANUP => !$ENV{SLUICE_KEEP_TMP});
	chmod 0755, $dir;
	my $self = bless {
		dir => $dir,
		main => {
			queue_directory => "$dir/spool",
			myhostname => 'mx.example.test',
			sluice_smtpd_workers => 2,
			mail_owner => run_user(),
			plugin_directory => "$ROOT/build/plugins",
			%{ $opt{main} || {} },
		},
		listeners => $opt{listeners} || { smtp => '' },
		ports => {},
		timeout => $opt{timeout} || $DEFAULT_TIMEOUT,
	}, $class;
	$self->{ports}{$_} = free_port() for sort keys %{ $self->{listeners} };
	$self->write_main;
	$self->write_master;
	$self->start unless exists $opt{start} && !$opt{start};
	return $self;
}

sub dir { $_[0]{dir} }
sub pid { $_[0]{pid} }
sub config { $_[0]{main}{$_[1]} }

# The port of a listener: the only one, 'smtp', or the one named.
sub port {
	my ($self, $name) = @_;
	my @names = sort keys %{ $self->{ports} };
	$name //= @names == 1 ? $names[0] : 'smtp';
	return $self->{ports}{$name} // die "no listener named $name";
}

sub write_file {
	my ($self, $name, $text) = @_;
	my $path = $name =~ m{^/} ? $name : "$self->{dir}/$name";
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh or die "$path: $!";
	return $path;
}

# Certificates for the TLS tests, made with openssl in the test's
# directory (its output in openssl.log): a CA (ca.pem, ca.key); the
# server's key and certificate for mx.example.test (subjectAltName too)
# in one chain file, server.pem, mode 0600; a client certificate for
# client.example signed by the CA (client.pem, client.key).  Returns the
# SHA-256 fingerprint of client.pem ("AB:CD:...").
sub make_certs {
	my ($self) = @_;
	my $dir = $self->{dir};
	my $ossl = sub {
		system("openssl @_ >>$dir/openssl.log 2>&1") == 0 or die "openssl @_ failed";
	};
	$ossl->("req -x509 -newkey rsa:2048 -nodes -keyout $dir/ca.key -out $dir/ca.pem "
		. "-days 30 -subj /CN=Test\\ CA");
	$ossl->("req -x509 -newkey rsa:2048 -nodes -keyout $dir/server.key -out $dir/server.crt "
		. "-days 30 -subj /CN=mx.example.test -addext subjectAltName=DNS:mx.example.test");
	$ossl->("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $dir/client.key "
		. "-out $dir/client.csr -subj /CN=client.example");
	$ossl->("x509 -req -in $dir/client.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial "
		. "-out $dir/client.pem -days 30");
	system("cat $dir/server.key $dir/server.crt > $dir/server.pem") == 0 or die;
	chmod 0600, "$dir/server.pem", "$dir/client.key";
	my ($fp) = `openssl x509 -in $dir/client.pem -noout -fingerprint -sha256` =~ /=(\S+)/;
	return $fp;
}

sub write_main {
	my ($self) = @_;
	my $m = $self->{main};
	$self->write_file('main.cf', join '',
			  map { "$_ = $m->{$_}\n" } grep { defined $m->{$_} } sort keys %$m);
}

sub write_master {
	my ($self) = @_;
	my $text = '';
	for my $name (sort keys %{ $self->{listeners} }) {
		my $extra = $self->{listeners}{$name};
		$text .= "127.0.0.1:$self->{ports}{$name} inet - - - - - smtpd"
		    . ($extra ne '' ? " $extra" : '') . "\n";
	}
	$self->write_file('master.cf', $text);
}

# Change main.cf parameters (undef removes one) and rewrite it.
sub set_main {
	my ($self, %params) = @_;
	@{ $self->{main} }{ keys %params } = values %params;
	$self->write_main;
}

# ---- the log -------------------------------------------------------------

# Where sluice logs: maillog_file when set, else the captured stderr.
sub log_file {
	my ($self) = @_;
	my $file = $self->{main}{maillog_file};
	return defined $file && $file ne '' ? $file : "$self->{dir}/log";
}

sub log_text {
	my ($self, $from) = @_;
	open my $fh, '<', $self->log_file or return '';
	local $/;
	my $text = <$fh> // '';
	return defined $from ? substr($text, $from) : $text;
}

# The current end of the log, to wait for lines written after it.
sub log_mark { length $_[0]->log_text }

# Poll `cond` (a code ref) until it returns true or `timeout` seconds pass.
sub wait_until {
	my ($cond, $timeout) = @_;
	my $deadline = time + ($timeout // $DEFAULT_TIMEOUT);
	while (1) {
		my $r = $cond->();
		return $r if $r;
		return undef if time >= $deadline;
		sleep 0.05;
	}
}

# Wait for a log line matching re, written after `from` (a log_mark);
# returns the first matching line, or undef on timeout or when the
# server exited meanwhile.
sub wait_log {
	my ($self, $re, $timeout, %opt) = @_;
	my $from = $opt{from} // 0;
	my $found = wait_until(sub {
		for my $line (split /\n/, $self->log_text($from)) {
			return \$line if $line =~ $re;
		}
		return $self->{pid} && !$self->alive ? \undef : undef;
	}, $timeout // $self->{timeout});
	return $found ? $$found : undef;
}

# ---- the server ----------------------------------------------------------

# In a child about to exec the master: if the test process dies in any
# way that skips END (a crash, SIGKILL, a runaway fork), the kernel sends
# the master SIGTERM (prctl PR_SET_PDEATHSIG), so no sluice outlives its
# test.
sub die_with_parent {
	my ($SYS_prctl, $PR_SET_PDEATHSIG) = (157, 1);   # x86_64 Linux
	syscall($SYS_prctl, $PR_SET_PDEATHSIG, 15);
}

# Run @argv in the background, stdin /dev/null, stdout and stderr
# appended to $log, dying with the test (die_with_parent); its pid.
sub spawn_logged {
	my ($log, @argv) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $log or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
		die_with_parent();
		exec { $argv[0] } @argv or POSIX::_exit(127);
	}
	return $pid;
}

sub start {
	my ($self) = @_;
	my $mark = $self->log_mark;
	my $pid = spawn_logged("$self->{dir}/log", $SLUICE, '-c', $self->{dir}, 'run');
	$self->{pid} = $pid;
	$running{$pid} = 1;
	my $line = $self->wait_log(qr/daemon started/, $self->{timeout}, from => $mark);
	die "sluice did not start:\n" . $self->log_text . ($self->{exit_text} // '')
	    unless defined $line;
	return $pid;
}

# Is the foreground master still running?  Reaps it when it is not.
sub alive {
	my ($self) = @_;
	my $pid = $self->{pid} or return 0;
	my $r = waitpid($pid, WNOHANG);
	return 1 if $r == 0;
	$self->{exit_status} = $?;
	$self->{exit_text} = sprintf "sluice exited with status %d\n", $? >> 8;
	delete $running{$pid};
	delete $self->{pid};
	return 0;
}

# Wait for the master to exit; its wait status, or undef on timeout.
sub wait_exit {
	my ($self, $timeout) = @_;
	return $self->{exit_status} unless $self->{pid};
	wait_until(sub { !$self->alive }, $timeout // $self->{timeout})
	    or return undef;
	return $self->{exit_status};
}

# SIGHUP, then wait for the master's answer: "reload --" by default.
sub reload {
	my ($self, %opt) = @_;
	my $mark = $self->log_mark;
	kill 'HUP', $self->{pid} or die "kill HUP: $!";
	return $self->wait_log($opt{expect} // qr/reload -- version/,
			       $opt{timeout}, from => $mark);
}

# SIGTERM and wait; the exit status (as $?), or undef when it had to be
# killed.
sub stop {
	my ($self, $timeout) = @_;
	return $self->{exit_status} unless $self->{pid};
	kill 'TERM', $self->{pid};
	my $status = $self->wait_exit($timeout // 20);
	return $status if defined $status;
	kill 'KILL', $self->{pid};
	$self->wait_exit(5);
	return undef;
}

# Run `sluice -c DIR @args`; (exit code, stdout and stderr together).
sub sluice {
	my ($self, @args) = @_;
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if ($pid == 0) {
		open STDERR, '>&', \*STDOUT;
		open STDIN, '<', '/dev/null';
		exec($SLUICE, '-c', $self->{dir}, @args) or POSIX::_exit(127);
	}
	local $/;
	my $out = <$fh> // '';
	close $fh;
	return ($? >> 8, $out);
}

# `sluice start` (a daemon): remembered so that END stops it too.
sub start_daemon {
	my ($self) = @_;
	my ($rc, $out) = $self->sluice('start');
	if (my $pid = $self->pidfile_pid) {
		$running{$pid} = 1;
		$self->{daemon_pid} = $pid;
	}
	return ($rc, $out);
}

sub pidfile_pid {
	my ($self) = @_;
	open my $fh, '<', "$self->{main}{queue_directory}/pid/master.pid" or return;
	my $pid = <$fh> // '';
	return $pid =~ /(\d+)/ ? $1 : undef;
}

# ---- processes -----------------------------------------------------------

# (ppid, state) of a process from /proc, or () when it is gone.
sub proc_stat {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return;
	my $stat = <$fh> // return;
	$stat =~ /\)\s+(\S)\s+(\d+)/ or return;
	return ($2, $1);
}

# The pids of the children of `ppid` (the master by default).
sub children {
	my ($self, $ppid) = @_;
	$ppid //= $self->{pid} // $self->{daemon_pid};
	my @kids;
	opendir my $dh, '/proc' or return;
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my ($parent, $state) = proc_stat($pid);
		push @kids, $pid if defined $parent && $parent == $ppid;
	}
	return sort { $a <=> $b } @kids;
}

# The workers: live children of the master (zombies are not workers).
sub worker_pids {
	my ($self) = @_;
	return grep { my (undef, $st) = proc_stat($_); defined $st && $st ne 'Z' }
	    $self->children;
}

# Has process `pid` exited?  (A zombie whose parent is gone counts.)
sub gone {
	my ($pid) = @_;
	my (undef, $state) = proc_stat($pid);
	return !defined $state || $state eq 'Z';
}

sub zombies {
	my ($self) = @_;
	return grep { my (undef, $st) = proc_stat($_); defined $st && $st eq 'Z' }
	    $self->children;
}

# The real uid of a process.
sub proc_uid {
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return;
	while (my $line = <$fh>) {
		return $1 if $line =~ /^Uid:\s+(\d+)/;
	}
	return;
}

# ---- the queue -----------------------------------------------------------

sub queue_files {
	my ($self, $sub) = @_;
	my $d = "$self->{main}{queue_directory}/" . ($sub // 'incoming');
	opendir my $dh, $d or return;
	return sort grep { !/^\./ } readdir $dh;
}

# ---- SMTP ----------------------------------------------------------------

# A client connected to a listener (by name or port number).
sub smtp {
	my ($self, $which, %opt) = @_;
	my $port = defined $which && $which =~ /^\d+$/ ? $which : $self->port($which);
	return SluiceTest::Client->new(port => $port,
				       timeout => $opt{timeout} // $self->{timeout});
}

# ---- cleaning up ---------------------------------------------------------

sub kill_master {
	my ($pid) = @_;
	kill 'TERM', $pid or return;
	my $deadline = time + 15;
	while (time < $deadline) {
		my $r = waitpid($pid, WNOHANG);
		return if $r == $pid || ($r < 0 && !kill 0, $pid);
		sleep 0.05;
	}
	kill 'KILL', $pid;
	waitpid($pid, 0);
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $!, $@);
	for my $pid (grep { defined } $self->{pid}, $self->{daemon_pid}) {
		next unless $running{$pid};
		kill_master($pid);
		delete $running{$pid};
	}
}

END {
	local ($?, $!, $@);
	kill_master($_) for keys %running;
}

# ==========================================================================

# A line-based SMTP client: send_line, read_reply (code and full text of
# a multi-line reply), cmd (both).  Every read has a deadline.
package SluiceTest::Client;

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

sub new {
	my ($class, %opt) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => $opt{host} // '127.0.0.1',
					 PeerPort => $opt{port}, Proto => 'tcp',
					 Timeout => $opt{timeout} // 10)
	    or return undef;
	return bless { sock => $sock, buf => '', eof => 0,
		       timeout => $opt{timeout} // 10 }, $class;
}

sub send_raw {
	my ($self, $data) = @_;
	local $SIG{PIPE} = 'IGNORE';
	while (length $data) {
		my $n = syswrite($self->{sock}, $data);
		return 0 unless defined $n;
		substr($data, 0, $n) = '';
	}
	return 1;
}

sub send_line { $_[0]->send_raw("$_[1]\r\n") }

# One line without its CRLF, or undef at EOF or timeout.
sub read_line {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	my $sel = IO::Select->new($self->{sock});
	while ($self->{buf} !~ /\n/) {
		return undef if $self->{eof};
		my $left = $deadline - time;
		return undef if $left <= 0 || !$sel->can_read($left);
		my $n = sysread($self->{sock}, my $chunk, 65536);
		if (!$n) {
			$self->{eof} = 1;
			next;
		}
		$self->{buf} .= $chunk;
	}
	$self->{buf} =~ s/^(.*?)\r?\n//;
	return $1;
}

# (code, text) of the next reply, text being all its lines joined with
# "\n"; in scalar context the code.  Empty list at EOF or timeout.
sub read_reply {
	my ($self, $timeout) = @_;
	my @lines;
	while (defined(my $line = $self->read_line($timeout))) {
		push @lines, $line;
		last if $line =~ /^\d{3}(?: |$)/;
	}
	return unless @lines && $lines[-1] =~ /^(\d{3})(?: |$)/;
	my $code = $1;
	return wantarray ? ($code, join "\n", @lines) : $code;
}

sub cmd {
	my ($self, $line) = @_;
	$self->send_line($line) or return;
	return $self->read_reply;
}

# MAIL, RCPT, DATA and the content; the (code, text) of the first
# failing step or of the end of data.
sub transaction {
	my ($self, %m) = @_;
	my $from = $m{from} // 'sender@example.org';
	my @steps = ("MAIL FROM:<$from>",
		     map { "RCPT TO:<$_>" } @{ $m{to} || ['rcpt@example.net'] });
	for my $step (@steps) {
		my ($code, $text) = $self->cmd($step);
		return ($code, $text) unless defined $code && $code =~ /^2/;
	}
	my ($code, $text) = $self->cmd('DATA');
	return ($code, $text) unless defined $code && $code eq '354';
	my $body = $m{body} // "Subject: test\r\n\r\nhello\r\n";
	$body =~ s/(?<!\r)\n/\r\n/g;
	$body =~ s/^\./../mg;
	$self->send_raw($body . ($body =~ /\r\n$/ ? '' : "\r\n") . ".\r\n");
	return $self->read_reply;
}

# A whole session for one message: the greeting, EHLO client.example,
# the transaction from alice@example.org to bob@example.net with `body`,
# QUIT (`from` and `to` as transaction's may replace the envelope).  The
# (code, text) of the first reply that is not a success, else of the end
# of data, and the queue id that reply names.
sub send_message {
	my ($self, $body, %envelope) = @_;
	my ($code, $reply) = $self->hello('client.example');
	return ($code, $reply) unless defined $code && $code eq '250';
	($code, $reply) = $self->transaction(from => 'alice@example.org',
					     to => ['bob@example.net'], %envelope, body => $body);
	$self->cmd('QUIT');
	my ($id) = ($reply // '') =~ /queued as (\S+)/;
	return ($code, $reply // '', $id);
}

# True once the server has closed the connection (within the timeout).
sub closed {
	my ($self, $timeout) = @_;
	1 while defined $self->read_line($timeout);
	return $self->{eof};
}

sub close {
	my ($self) = @_;
	close $self->{sock} if $self->{sock};
	delete $self->{sock};
}

1;

# ==========================================================================
# Additions for the SMTP server tests (t/smtp_*.t): a server in its own
# process group (to SIGKILL master and workers at once), the queue file
# reader, and client helpers for pipelined and timed exchanges.
package SluiceTest;

# Like start(), but the master leads a process group of its own, so that
# kill_group() reaches it and its workers with one kill(2).
sub start_group {
	my ($self) = @_;
	my $mark = $self->log_mark;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		POSIX::setpgid(0, 0);
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$self->{dir}/log" or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
		die_with_parent();
		exec($SLUICE, '-c', $self->{dir}, 'run') or POSIX::_exit(127);
	}
	POSIX::setpgid($pid, $pid);   # both sides: no race with the kill
	$self->{pid} = $pid;
	$self->{pgrp} = $pid;
	$running{$pid} = 1;
	my $line = $self->wait_log(qr/daemon started/, $self->{timeout}, from => $mark);
	die "sluice did not start:\n" . $self->log_text . ($self->{exit_text} // '')
	    unless defined $line;
	return $pid;
}

# Send `sig` to the process group started by start_group() and reap the
# master; true when every process of the group is gone.
sub kill_group {
	my ($self, $sig) = @_;
	my $pgrp = $self->{pgrp} or die 'kill_group needs start_group';
	my @members = ($self->{pid}, $self->children);
	kill $sig // 'KILL', -$pgrp;
	$self->wait_exit(10);
	delete $self->{pgrp};
	return wait_until(sub { !grep { !gone($_) } @members }, 10) ? 1 : 0;
}

# A Test::More check: send `line` on client `c`; its reply (all lines,
# joined with "\n") must be exactly `want`.  The name defaults to
# "LINE -> WANT".
sub reply_is {
	my ($c, $line, $want, $name) = @_;
	my ($code, $text) = $c->cmd($line);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return Test::More::is($text, $want, $name // "$line -> $want");
}

# A Test::More check: send `line` on client `c`; its reply must have
# code `code` and match `re` (the reply is shown when it does not).
sub reply_like {
	my ($c, $line, $code, $re, $name) = @_;
	my ($got, $text) = $c->cmd($line);
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	return Test::More::ok(defined $got && $got == $code && $text =~ $re, $name)
	    || Test::More::diag("$line -> " . ($text // 'no reply'));
}

# The path of queue file `id` in `sub` (incoming/ by default).
sub queue_path {
	my ($self, $id, $sub) = @_;
	return "$self->{main}{queue_directory}/" . ($sub // 'incoming') . "/$id";
}

# Read and check a queue file as docs/queue-format.md describes it.
# Returns a hash: mode (permission bits), bytes (the whole file),
# envelope_offset, content (the message: bytes 36 .. envelope offset),
# records ([name, decoded value] in file order; value undef when the
# record has none), rec (name => [values]), rcpt ([{status, addr, notify,
# orcpt}]), complete (the reader's checks 1-4 hold) and problem (why not).
sub read_queue_file {
	my ($path) = @_;
	my @st = stat $path or return;
	open my $fh, '<:raw', $path or return;
	local $/;
	my $bytes = <$fh> // '';
	close $fh;
	my %q = (mode => $st[2] & 07777, bytes => $bytes, records => [],
		 rec => {}, rcpt => []);
	my $problem;
	if ($bytes !~ /\Asluice-queue 1 (\d{20})\n/) {
		$problem = 'bad preamble';
	} else {
		my $off = $q{envelope_offset} = 0 + $1;
		if ($off < 36 || $off > length $bytes) {
			$problem = "envelope offset $off outside the file";
		} else {
			$q{content} = substr($bytes, 36, $off - 36);
			my $env = substr($bytes, $off);
			$problem = 'envelope does not end with LF' unless $env =~ /\n\z/;
			for my $line (split /\n/, $env) {
				my ($name, $value) = $line =~ /^([a-z0-9_]+)(?: (.*))?\z/s
				    or do { $problem //= "bad record '$line'"; next };
				$problem //= "raw control byte in '$line'"
				    if defined $value && $value =~ /[\x00-\x08\x0a-\x1f\x7f]/;
				if (defined $value && $name ne 'rcpt') {
					$value =~ s/%([0-9A-F]{2})/chr hex $1/ge;
				}
				push @{ $q{records} }, [$name, $value];
				push @{ $q{rec}{$name} }, $value;
				if ($name eq 'rcpt') {
					my ($status, $addr, $notify, $orcpt) = split /\t/, $value // '', -1;
					s/%([0-9A-F]{2})/chr hex $1/ge for grep { defined } $addr, $orcpt;
					push @{ $q{rcpt} }, { status => $status, addr => $addr,
							      notify => $notify, orcpt => $orcpt };
				}
			}
			my @r = @{ $q{records} };
			$problem //= 'last record is not end' unless @r && $r[-1][0] eq 'end';
			for my $need (qw(arrival size sender body seg)) {
				$problem //= "no $need record" unless $q{rec}{$need};
			}
			my $sum = 0;
			for my $seg (@{ $q{rec}{seg} || [] }) {
				my ($o, $l) = ($seg // '') =~ /^(\d+) (\d+)$/
				    or do { $problem //= 'bad seg'; next };
				$problem //= 'seg outside the content' if $o < 36 || $o + $l > $off;
				$sum += $l;
			}
			$problem //= "segments add up to $sum, size says $q{rec}{size}[0]"
			    if $q{rec}{size} && $sum != ($q{rec}{size}[0] // -1);
		}
	}
	$problem //= sprintf 'mode %04o, not 0700', $q{mode} unless $q{mode} == 0700;
	$q{problem} = $problem;
	$q{complete} = !defined $problem;
	return \%q;
}

package SluiceTest::Client;

# Read `n` replies: a list of [code, text].  Stops early at EOF/timeout.
sub read_replies {
	my ($self, $n, $timeout) = @_;
	my @r;
	for (1 .. $n) {
		my ($code, $text) = $self->read_reply($timeout);
		last unless defined $code;
		push @r, [$code, $text];
	}
	return @r;
}

# Send several command lines in one write (a pipelined group).
sub send_group {
	my ($self, @lines) = @_;
	return $self->send_raw(join '', map { "$_\r\n" } @lines);
}

# Greeting and EHLO (or HELO when helo => 1); the (code, text) of the
# hello reply, or of the greeting when that was not 220.
sub hello {
	my ($self, $name, %opt) = @_;
	my ($code, $text) = $self->read_reply;
	return ($code, $text) unless defined $code && $code eq '220';
	return $self->cmd(($opt{helo} ? 'HELO ' : 'EHLO ') . ($name // 'client.example'));
}

1;
