# RestrictCases - the restriction case table: read the case files
# (t/compat/cases/*.cases), set a server up for each configuration, and
# play each case's SMTP dialogue against it.
#
# Used by t/compat/postfix_compat.t (each case against a real Postfix and
# against sluice: same reply code and enhanced status code),
# t/restrict_cases.t (sluice alone, reply text too), the open-relay
# tests and t/restrict_explain_cases.t (`sluice explain` must agree).  The file format is described in t/compat/cases/README; in
# short:
#
#   @config NAME              main.cf lines follow, as an admin writes
#   mynetworks = 127.0.0.1/32   them; @DIR@ stands for the directory the
#   smtpd_relay_restrictions =  tables are written to
#       permit_mynetworks, reject_unauth_destination
#   @table access             a table file (hash: tables are built with
#   127.0.0.2   REJECT        postmap for Postfix, sluice map build for
#                             sluice)
#   @case untrusted client cannot relay
#   client 127.0.0.2          source address (default 127.0.0.1)
#   helo client.example       EHLO sent first (default; "helo none": no)
#   MAIL FROM:<a@example.org>  => 250 2.1.0 Ok
#   RCPT TO:<b@remote.example> => 554 5.7.1 <b@remote.example>: Relay access denied
#
# What it promises:
#  - load() returns the configurations in file order, each with its
#    cases in file order, and dies with FILE:LINE on a malformed line;
#  - play() never hangs: every read has a deadline; a closed connection
#    or a 421 ends the dialogue (the remaining steps get no reply);
#  - the expected text of a step is exact unless written /regex/ or *.
package RestrictCases;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

our $CASE_DIR = abs_path(dirname(__FILE__)) . '/cases';

# The main.cf lines every configuration starts from, on both servers
# (PostfixPeer adds Postfix's own plumbing, SluiceTest sluice's).
our %BASE = (
	mydomain => 'example.test',
	mydestination => '$mydomain, $myhostname, localhost',
	inet_interfaces => 'loopback-only',
	inet_protocols => 'ipv4',
	alias_maps => '',
	smtpd_peername_lookup => 'no',
);

sub case_files {
	my (@names) = @_;
	return map { "$CASE_DIR/$_.cases" } @names if @names;
	opendir my $dh, $CASE_DIR or die "$CASE_DIR: $!";
	return map { "$CASE_DIR/$_" } sort grep { /\.cases$/ } readdir $dh;
}

# ---- reading -------------------------------------------------------------

sub parse_expect {
	my ($where, $e) = @_;
	return { code => '???', unknown => 1 } if $e eq '?';
	return { code => 'closed', closed => 1 } if $e eq 'closed';
	$e =~ /^(\d{3})(?:\s+(\d\.\d{1,3}\.\d{1,3}))?(?:\s+(.*?))?\s*$/
	    or die "$where: expected reply \"$e\" is not CODE [D.D.D] [TEXT]\n";
	my %x = (code => $1, dsn => $2);
	my $text = $3;
	if (defined $text && $text ne '' && $text ne '*') {
		if ($text =~ m{^/(.*)/$}) {
			$x{re} = qr/$1/;
		} else {
			$x{text} = $text;
		}
	}
	return \%x;
}

sub load {
	my (@files) = @_;
	@files = case_files() unless @files;
	my @configs;
	for my $file (@files) {
		open my $fh, '<', $file or die "$file: $!";
		my $base = basename($file, '.cases');
		my ($config, $block);   # the current config, and the block lines go to
		while (my $line = <$fh>) {
			chomp $line;
			$line =~ s/\r$//;
			my $where = "$file:$.";
			if ($line =~ /^\@config\s+(\S+)\s*$/) {
				$config = { name => "$base/$1", file => $file, line => $.,
					    main_text => '', tables => [], cases => [] };
				push @configs, $config;
				$block = { kind => 'main' };
				next;
			}
			die "$where: \"$line\" before any \@config\n"
			    if !$config && $line =~ /\S/ && $line !~ /^#/;
			next unless $config;
			if ($line =~ /^\@table\s+(\S+)\s*$/) {
				my $t = { name => $1, text => '' };
				push @{ $config->{tables} }, $t;
				$block = { kind => 'table', table => $t };
				next;
			}
			if ($line =~ /^\@case\s+(.+?)\s*$/) {
				my $c = { title => $1, file => $file, line => $.,
					  config => $config->{name}, client => '127.0.0.1',
					  helo => 'client.example', steps => [] };
				push @{ $config->{cases} }, $c;
				$block = { kind => 'case', case => $c };
				next;
			}
			# "@domain" is a table key, elsewhere a misspelt directive
			die "$where: unknown directive \"$line\"\n"
			    if $line =~ /^\@/ && $block->{kind} ne 'table';
			if ($block->{kind} eq 'main') {
				$config->{main_text} .= "$line\n";
			} elsif ($block->{kind} eq 'table') {
				$block->{table}{text} .= "$line\n";
			} else {
				parse_case_line($block->{case}, $line, $where);
			}
		}
	}
	for my $config (@configs) {
		$config->{main} = parse_main($config->{main_text}, "$config->{file}:$config->{line}");
		for my $c (@{ $config->{cases} }) {
			die "$c->{file}:$c->{line}: case without steps\n" unless @{ $c->{steps} };
			$c->{steps}[-1]{sluice_expect} = $c->{sluice_reply} if $c->{sluice_reply};
		}
	}
	return @configs;
}

sub parse_case_line {
	my ($c, $line, $where) = @_;
	return if $line !~ /\S/ || $line =~ /^\s*#/;
	if ($line =~ /^client\s+(\S+)\s*$/) {
		$c->{client} = $1;
	} elsif ($line =~ /^helo\s+(\S+)\s*$/) {
		$c->{helo} = $1 eq 'none' ? undef : $1;
	} elsif ($line =~ /^todo\s+(.+?)\s*$/) {
		$c->{todo} = $1;
	} elsif ($line =~ /^postfix-differs\s+(.+?)\s*$/) {
		# a deliberate difference (docs/postfix-differences.md): the
		# replies are sluice's; the Postfix comparison skips the case
		$c->{differs} = $1;
	} elsif ($line =~ /^sluice-reply\s+(.+?)\s*$/) {
		# sluice's reply on the last step, where it differs from
		# Postfix's on purpose (docs/postfix-differences.md says why)
		$c->{sluice_reply} = parse_expect($where, $1);
	} elsif ($line =~ /^(.*?)\s+=>\s+(.*)$/) {
		my ($cmd, $e) = ($1, $2);
		$cmd =~ s/^\s+//;
		push @{ $c->{steps} }, { cmd => $cmd, expect => parse_expect($where, $e),
					 line => $where, lineno => $. };
	} else {
		die "$where: \"$line\" is not COMMAND => REPLY, client, helo or todo\n";
	}
}

# main.cf text to { name => value }: continuation lines joined with a
# space, comments and blank lines skipped.
sub parse_main {
	my ($text, $where) = @_;
	my (%main, $last);
	for my $line (split /\n/, $text) {
		next if $line =~ /^\s*#/ || $line !~ /\S/;
		if ($line =~ /^\s/) {
			die "$where: continuation line without a parameter\n" unless defined $last;
			$line =~ s/^\s+//;
			$main{$last} .= ($main{$last} eq '' ? '' : ' ') . $line;
			next;
		}
		$line =~ /^([\w.-]+)\s*=\s*(.*?)\s*$/ or die "$where: bad main.cf line \"$line\"\n";
		$main{$last = $1} = $2;
	}
	return \%main;
}

# ---- setting a server up ------------------------------------------------

# Write the config's tables into `dir`; `build` is called with the path
# of each table that main.cf names as hash:@DIR@/NAME.  Returns the
# main.cf hash (base + config) with @DIR@ replaced by `dir`.
sub materialise {
	my ($config, $dir, $build) = @_;
	mkdir $dir, 0755 unless -d $dir;
	chmod 0755, $dir;
	my %main = (%BASE, %{ $config->{main} });
	s/\@DIR\@/$dir/g for values %main;
	my $all = join "\n", values %main;
	for my $t (@{ $config->{tables} }) {
		my $path = "$dir/$t->{name}";
		if ($t->{name} eq 'sasldb2') {
			make_sasldb($path, $t->{text}, $main{myhostname} // 'mx.example.test');
			next;
		}
		(my $text = $t->{text}) =~ s/\@DIR\@/$dir/g;
		open my $fh, '>', $path or die "$path: $!";
		print $fh $text;
		close $fh or die "$path: $!";
		chmod 0644, $path;
		# dated back: Postfix waits for a file younger than a second
		utime(time - 10, time - 10, $path);
		$build->($path) if $all =~ /\bhash:\Q$path\E\b/;
	}
	return \%main;
}

# A sluice (SluiceTest) for a configuration: its tables written and
# built, started (unless start => 0: the configuration only, for `sluice
# explain`).  Returns (server, undef) or (server or undef, why it could
# not start); a config sluice refuses is a finding, not a crash.
sub start_sluice {
	my ($config, %opt) = @_;
	require SluiceTest;
	my ($t, $error);
	eval {
		$t = SluiceTest->new(start => 0);
		my $main = materialise($config, $t->dir . '/tables', sub {
			my ($rc, $out) = $t->sluice('map', 'build', $_[0]);
			$error //= "sluice map build $_[0]: $out" if $rc;
		});
		$t->set_main(%$main);
		$t->start if $opt{start} // 1;
		1;
	} or $error //= "sluice does not start with this configuration: $@";
	# The binary was being relinked (a shared working tree): wait for it
	# to be executable again, then try once more.
	if ($error && $error =~ /Can't exec/ && !$opt{retried}) {
		no warnings 'once';
		SluiceTest::wait_until(sub { -x $SluiceTest::SLUICE }, 60);
		return start_sluice($config, %opt, retried => 1);
	}
	return ($t, $error);
}

# A table named sasldb2 holds "user password" lines: the Cyrus SASL
# sasldb of that name is made with saslpasswd2, users in the realm
# $myhostname, readable by the servers' unprivileged processes.
sub make_sasldb {
	my ($path, $text, $realm) = @_;
	for my $line (split /\n/, $text) {
		next if $line =~ /^\s*(?:#|$)/;
		my ($user, $pass) = split ' ', $line, 2;
		open my $p, '|-', 'saslpasswd2', '-f', $path, '-u', $realm, '-p', '-c', $user
		    or die "saslpasswd2: $!";
		print $p $pass;
		close $p or die "saslpasswd2 -c $user failed: $?";
	}
	chmod 0644, $path;
}

# ---- playing a dialogue ----------------------------------------------------

package RestrictCases::Conn;

sub new {
	my ($class, %opt) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $opt{port},
					 LocalAddr => $opt{client}, Proto => 'tcp',
					 Timeout => 10)
	    or return undef;
	return bless { sock => $sock, buf => '', eof => 0, timeout => $opt{timeout} // 15 }, $class;
}

sub read_line {
	my ($self, $timeout) = @_;
	my $deadline = time + ($timeout // $self->{timeout});
	my $sel = IO::Select->new($self->{sock});
	while ($self->{buf} !~ /\n/) {
		return undef if $self->{eof};
		my $left = $deadline - time;
		return undef if $left <= 0 || !$sel->can_read($left);
		my $n = sysread($self->{sock}, my $chunk, 65536);
		if (!$n) { $self->{eof} = 1; next }
		$self->{buf} .= $chunk;
	}
	$self->{buf} =~ s/^(.*?)\r?\n//;
	return $1;
}

# { code, dsn, text (last line, after code and dsn), full } or undef.
sub read_reply {
	my ($self, $timeout) = @_;
	my @lines;
	while (defined(my $line = $self->read_line($timeout))) {
		push @lines, $line;
		last if $line =~ /^\d{3}(?: |$)/;
	}
	return undef unless @lines && $lines[-1] =~ /^(\d{3})(?: |$)/;
	my $code = $1;
	my $rest = substr($lines[-1], 4) // '';
	my $dsn = $rest =~ s/^(\d\.\d{1,3}\.\d{1,3})(?: |$)// ? $1 : undef;
	return { code => $code, dsn => $dsn, text => $rest, full => join "\n", @lines };
}

sub send_line {
	my ($self, $line) = @_;
	local $SIG{PIPE} = 'IGNORE';
	return defined syswrite($self->{sock}, "$line\r\n");
}

sub close { close $_[0]{sock} }

package RestrictCases;

our $MESSAGE = "From: <sender\@example.org>\r\nTo: <rcpt\@example.test>\r\n"
    . "Subject: restriction test\r\n\r\nhello\r\n.";

# Play case `c` against 127.0.0.1:port from the case's client address.
# Returns the steps actually run, each { cmd, expect, got } (got undef:
# no reply), the greeting and the implicit EHLO first.
sub play {
	my ($c, $port) = @_;
	my @out;
	my $conn = RestrictCases::Conn->new(port => $port, client => $c->{client});
	my @steps = @{ $c->{steps} };
	my $explicit_greeting = @steps && $steps[0]{cmd} eq 'greeting';
	unshift @steps, { cmd => 'greeting', expect => { code => 220 }, implicit => 1 }
	    unless $explicit_greeting;
	if (defined $c->{helo} && !grep { $_->{cmd} =~ /^(?:HELO|EHLO)\b/i } @steps) {
		splice @steps, 1, 0, { cmd => "EHLO $c->{helo}", expect => { code => 250 },
				       implicit => 1 };
	}
	my $open = defined $conn;
	for my $s (@steps) {
		my $got;
		if ($s->{expect}{closed}) {
			# the server must have closed the connection: nothing but
			# end of file, after the command when one is given
			$conn->send_line($s->{cmd}) if $open && $s->{cmd} ne '-';
			$got = $conn ? $conn->read_reply(5) : undef;
			$got //= { code => 'closed', closed => 1 } if $conn && $conn->{eof};
			$open = 0;
		} elsif ($open) {
			if ($s->{cmd} eq 'greeting') {
				$got = $conn->read_reply;
			} elsif ($s->{cmd} eq '.') {
				$conn->send_line($MESSAGE);
				$got = $conn->read_reply;
			} elsif ($s->{cmd} eq '-') {
				$got = $conn->read_reply;
			} else {
				(my $line = $s->{cmd}) =~ s/\\r\\n/\r\n/g;
				$line =~ s/\\n/\r\n/g;
				$conn->send_line($line);
				$got = $conn->read_reply;
			}
			$open = 0 if !$got || $got->{code} eq '421' || $s->{cmd} =~ /^QUIT$/i;
		}
		push @out, { %$s, got => $got };
	}
	if ($conn) {
		$conn->send_line('QUIT') if $open;
		$conn->close;
	}
	return @out;
}

# The case with DATA and a message after its steps (replies not checked:
# the steps are marked extra), to see what an accepted RCPT leads to.
sub with_message {
	my ($c) = @_;
	return { %$c, steps => [ @{ $c->{steps} },
		{ cmd => 'DATA', expect => { code => 'any' }, extra => 1 },
		{ cmd => '.', expect => { code => 'any' }, extra => 1 } ] };
}

# Why a queued recipient `addr` is not a local one (a domain of the
# base mydestination, [127.0.0.1], or one of the `relay` domains), or ''
# when it is; a local part carrying routing (@ % ! outside quotes) is not
# local either.  The open-relay battery's check.
our %LOCAL = map { $_ => 1 } qw(example.test mx.example.test localhost [127.0.0.1]);
sub not_local {
	my ($addr, $relay) = @_;
	return 'no recipient' unless defined $addr;
	# no domain: a local user (Postfix appends $myorigin), unless routed
	return $addr =~ /[@%!]/ ? "local part $addr carries routing" : ''
	    unless $addr =~ /^(.*)@([^@"]+)$/s;
	my ($local, $domain) = ($1, $2);
	(my $d = lc $domain) =~ s/\.$//;
	return "domain $domain is neither local nor a relay domain"
	    unless $LOCAL{$d} || grep { $d eq $_ || $d =~ /\.\Q$_\E$/ } @{ $relay || [] };
	(my $bare = $local) =~ s/"(?:[^"\\]|\\.)*"//g;   # quoted parts are data
	return "local part $local carries routing" if $bare =~ /[@%!]/;
	return "local part $local is quoted routing, for a relay domain"
	    if !$LOCAL{$d} && $local =~ /[@%!]/;
	return '';
}

# "250 2.1.0 Ok" of a reply or expectation, for messages.
sub show {
	my ($r) = @_;
	return '(no reply)' unless $r;
	return '(connection closed)' if $r->{closed};
	return join ' ', grep { defined && $_ ne '' } $r->{code}, $r->{dsn},
	    $r->{text} // ($r->{re} ? "/$r->{re}/" : undef);
}

# Does reply `got` match expectation `e`?  what: 'code' (code and dsn) or
# 'text' (code, dsn and text).  Returns '' when it matches, else why not.
sub mismatch {
	my ($got, $e, $what) = @_;
	return $got && $got->{closed} ? '' : 'the connection is still open'
	    if $e->{closed};
	return 'no reply' unless $got;
	return 'the connection was closed' if $got->{closed};
	return "code $got->{code}, not $e->{code}" if $got->{code} ne $e->{code};
	return 'enhanced code ' . ($got->{dsn} // 'none') . ", not $e->{dsn}"
	    if defined $e->{dsn} && ($got->{dsn} // '') ne $e->{dsn};
	# a text without a code before it: the reply has no enhanced code
	return "enhanced code $got->{dsn} where the reply has none"
	    if !defined $e->{dsn} && (defined $e->{text} || $e->{re}) && defined $got->{dsn};
	return '' if $what eq 'code';
	return "text \"$got->{text}\"" if defined $e->{text} && $got->{text} ne $e->{text};
	return "text \"$got->{text}\" !~ $e->{re}" if $e->{re} && $got->{text} !~ $e->{re};
	return '';
}

1;
