# PostfixPeer - a private, real Postfix (Debian's) to compare sluice with.
#
#   use PostfixPeer;
#   plan skip_all => PostfixPeer->unavailable if PostfixPeer->unavailable;
#   my $pf = PostfixPeer->new;                 # a temp dir, not running yet
#   $pf->configure(main => { mynetworks => '127.0.0.1/32', ... });
#   $pf->start;                                # restarts when running
#   my $port = $pf->port;                      # its smtpd on 127.0.0.1
#   my @ids = $pf->queue_files('incoming');
#   my $env = $pf->envelope($id);              # { sender, rcpt => [...] }
#   $pf->stop;
#
# What it promises:
#  - everything lives in one temp dir: config directory (main.cf and a
#    master.cf with smtpd on a free 127.0.0.1 port, cleanup, rewrite,
#    proxymap, anvil and postlogd; no qmgr or pickup, so a queued message
#    stays in incoming/ where a test can read its envelope), queue, data
#    and the log (maillog_file);
#  - the base main.cf: compatibility_level = 3.6, inet_interfaces =
#    loopback-only, inet_protocols = ipv4, no aliases,
#    smtpd_peername_lookup = no (no DNS for the client), myhostname
#    mx.example.test, in_flow_delay = 0 (there is no qmgr to feed the
#    flow pipe); the test's parameters are written after these and
#    win (Postfix takes the last setting of a name);
#  - with cyrus_sasl_config_path set, its smtpd.conf is copied to
#    conf/sasl/, where Debian's Postfix reads it (it ignores the
#    parameter);
#  - the queue structure is made once by `postfix start`, as bench/run
#    does; every later (re)start runs Postfix's master directly in the
#    foreground (`master -d`, its own session), which takes milliseconds,
#    so a test can restart it for each configuration it needs;
#  - start() returns once the port answers with a 220; never a fixed
#    sleep; stop() ends the master and every process of the instance
#    (found by MAIL_CONFIG in their environment), and nothing outlives
#    the test (END, and a guardian process between the test and the
#    master that ends the master when the test dies, even by SIGKILL).
#
# Postfix's master must run as root: unavailable() says why it cannot
# run here (not root, no postfix package), for `plan skip_all`.
package PostfixPeer;

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use SluiceTest qw(free_port slurp);

our $POSTFIX = '/usr/sbin/postfix';
our $MASTER = '/usr/lib/postfix/sbin/master';
our $POSTMAP = '/usr/sbin/postmap';
our $POSTCAT = '/usr/sbin/postcat';

my %live;       # master pid => 1

# Why a private Postfix cannot run here, or '' when it can.
sub unavailable {
	return 'a private Postfix needs root (its master runs as root)' unless $> == 0;
	for my $f ($POSTFIX, $MASTER, $POSTMAP) {
		return "$f missing: install the postfix package (scripts/install-deps)" unless -x $f;
	}
	return "no user 'postfix'" unless defined getpwnam('postfix');
	return "no group 'postdrop'" unless defined getgrnam('postdrop');
	return '';
}

sub new {
	my ($class, %opt) = @_;
	my $top = tempdir('postfix-peer-XXXXXX', TMPDIR => 1,
			  CLEANUP => !$ENV{SLUICE_KEEP_TMP});
	chmod 0755, $top;
	# The config directory holds nothing else: postfix(1) wants it and
	# everything in it owned by root, which a queue is not.
	mkdir "$top/$_", 0755 or die "$top/$_: $!" for qw(conf queue tables);
	my $self = bless { top => $top, port => free_port(), main => {},
			   timeout => $opt{timeout} || 20 }, $class;
	$self->configure;       # postmap needs a main.cf from the start
	return $self;
}

sub dir { "$_[0]{top}/conf" }
sub top { $_[0]{top} }
sub port { $_[0]{port} }
sub queue_directory { "$_[0]{top}/queue" }
sub log_file { "$_[0]{top}/maillog" }

# Postfix reads a file modified in the last second only after waiting
# for it to settle (0.3 s at a time, up to 2 s): our files are complete
# when written, so they are dated a few seconds back.
sub write_file {
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh or die "$path: $!";
	backdate($path);
}

sub backdate { utime(time - 10, time - 10, @_) }

# The base main.cf, then the test's lines: `main` is a hash (name =>
# value) or the text of main.cf lines as an admin writes them.
sub configure {
	my ($self, %opt) = @_;
	my $top = $self->{top};
	my $text = <<"EOF";
# PostfixPeer base: where the files go, no DNS for the client, no aliases.
compatibility_level = 3.6
queue_directory = $top/queue
data_directory = $top/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
maillog_file = $top/maillog
maillog_file_prefixes = $top
smtpd_peername_lookup = no
# no qmgr puts tokens in the flow pipe: do not wait for them (1s a message)
in_flow_delay = 0
# the test's settings
EOF
	my $main = $opt{main} // {};
	$text .= ref $main ? join('', map { "$_ = $main->{$_}\n" } sort keys %$main)
			   : $main . ($main =~ /\n\z/ || $main eq '' ? '' : "\n");
	write_file("$top/conf/main.cf", $text);
	# Debian's Postfix reads Cyrus SASL's smtpd.conf from
	# $config_directory/sasl whatever cyrus_sasl_config_path says
	my $sasl = ref $main ? $main->{cyrus_sasl_config_path} : undef;
	if (defined $sasl && -f "$sasl/smtpd.conf") {
		mkdir "$top/conf/sasl", 0755;
		write_file("$top/conf/sasl/smtpd.conf", slurp("$sasl/smtpd.conf"));
	}
	write_file("$top/conf/master.cf", <<"EOF");
127.0.0.1:$self->{port} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
	$self->{configured} = 1;
}

# Build hash:FILE (FILE.db) with Postfix's postmap and this config.
sub postmap {
	my ($self, $file) = @_;
	my $out = `$POSTMAP -c $self->{top}/conf hash:$file 2>&1`;
	die "postmap hash:$file failed:\n$out" if $?;
	backdate($file, "$file.db");
}

# Once: `postfix start` makes the queue's directories with their owners
# (postfix-files); then it is stopped again.
sub make_queue {
	my ($self) = @_;
	return if $self->{queue_made}++;
	my $dir = "$self->{top}/conf";
	my $out = `$POSTFIX -c $dir start 2>&1`;
	if ($?) {
		# postfix(1) tells why only to syslog or to a terminal.
		$out .= `script -qc '$POSTFIX -c $dir start' /dev/null 2>&1`
		    if -x '/usr/bin/script';
		die "postfix start failed:\n$out" . (slurp($self->log_file) // '');
	}
	system("$POSTFIX -c $dir stop >/dev/null 2>&1");
	my $deadline = time + $self->{timeout};
	sleep 0.05 while $self->pids && time < $deadline;
	kill 'KILL', $self->pids;
}

sub start {
	my ($self) = @_;
	$self->configure unless $self->{configured};
	$self->stop if $self->{pid};
	$self->make_queue;
	my $dir = "$self->{top}/conf";
	my $pid = fork // die "fork: $!";
	guardian($dir, "$self->{top}/master.out") if $pid == 0;
	$self->{pid} = $pid;
	$live{$pid} = $self;
	return $pid if $self->wait_greeting;
	my $why = (slurp("$self->{top}/master.out") // '') . (slurp($self->log_file) // '');
	$self->stop;
	die "postfix did not answer on port $self->{port}:\n$why";
}

# In the child: a guardian process that runs Postfix's master and ends
# it when the test process dies in any way (PR_SET_PDEATHSIG): set on
# the master itself, it does not survive the master's start-up (the
# test found masters left over).  SIGTERM to the guardian (stop(), or the
# test's death) is passed on to the master, which ends its children.
sub guardian {
	my ($dir, $out) = @_;
	POSIX::setsid();
	open STDIN, '<', '/dev/null';
	open STDOUT, '>>', $out;
	open STDERR, '>&', \*STDOUT;
	my $master;
	$SIG{TERM} = sub {
		kill 'TERM', $master if $master;
		POSIX::_exit(0) unless $master;
	};
	syscall(157, 1, 15);    # prctl(PR_SET_PDEATHSIG, SIGTERM)
	POSIX::_exit(0) if getppid() == 1;      # the test is gone already
	$master = fork // POSIX::_exit(126);
	if ($master == 0) {
		$SIG{TERM} = 'DEFAULT';
		# the master ends its children by signalling its own process
		# group, and fails (a second's back-off) when it leads none
		POSIX::setpgid(0, 0);
		exec($MASTER, '-c', $dir, '-d') or POSIX::_exit(127);
	}
	while (1) {
		my $r = waitpid($master, 0);
		POSIX::_exit($? >> 8) if $r == $master;
		POSIX::_exit(1) if $r < 0 && !$!{EINTR};
	}
}

sub wait_greeting {
	my ($self) = @_;
	my $deadline = time + $self->{timeout};
	while (time < $deadline) {
		return 0 if waitpid($self->{pid}, WNOHANG) == $self->{pid};
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
					      PeerPort => $self->{port},
					      Proto => 'tcp', Timeout => 2);
		if ($s) {
			my $line = '';
			sysread($s, $line, 512) if IO::Select->new($s)->can_read(5);
			print $s "QUIT\r\n";
			close $s;
			return 1 if $line =~ /^220[ -]/;
		}
		sleep 0.02;
	}
	return 0;
}

# Processes of this instance: the master passes MAIL_CONFIG to its
# children, so match on it.
sub pids {
	my ($self) = @_;
	my $want = "MAIL_CONFIG=$self->{top}/conf";
	my @pids;
	opendir my $dh, '/proc' or return;
	for my $pid (grep { /^\d+$/ } readdir $dh) {
		my $env = slurp("/proc/$pid/environ") // next;
		push @pids, $pid if grep { $_ eq $want } split /\0/, $env;
	}
	return @pids;
}

sub stop {
	my ($self) = @_;
	my $pid = delete $self->{pid} or return;
	delete $live{$pid};
	kill 'TERM', $pid;
	my $deadline = time + $self->{timeout};
	while (time < $deadline) {
		last if waitpid($pid, WNOHANG) == $pid;
		sleep 0.02;
	}
	kill 'KILL', $pid;
	waitpid($pid, WNOHANG);
	$deadline = time + $self->{timeout};
	sleep 0.02 while $self->pids && time < $deadline;
	kill 'KILL', $self->pids;
}

# ---- the queue -----------------------------------------------------------

sub queue_files {
	my ($self, $sub) = @_;
	my $d = "$self->{top}/queue/" . ($sub // 'incoming');
	my @ids;
	require File::Find;
	File::Find::find({ no_chdir => 1, wanted => sub {
		push @ids, $1 if -f $_ && m{/([0-9A-Za-z]+)$};
	} }, $d) if -d $d;
	return sort @ids;
}

# The envelope of a queued message (postcat -e): { sender, rcpt => [..],
# orcpt => [..] }.
sub envelope {
	my ($self, $id) = @_;
	my $out = `$POSTCAT -c $self->{top}/conf -e -q $id 2>&1`;
	my %env = (rcpt => [], orcpt => [], text => $out);
	for (split /\n/, $out) {
		$env{sender} = $1 if /^sender: (.*)$/;
		push @{ $env{rcpt} }, $1 if /^recipient: (.*)$/;
		push @{ $env{orcpt} }, $1 if /^original_recipient: (.*)$/;
	}
	return \%env;
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

1;
