#!/usr/bin/perl
# syslog.t - `sluice start` without maillog_file logs to syslog, facility
# mail (syslog_facility), program name from syslog_name, in Postfix's
# shape: "<22>Nov 21 06:00:00 sluice/master[pid]: daemon started ...".
#
# The test plays the syslog daemon: it owns /dev/log (a datagram socket,
# as rsyslogd or journald would) for its duration.  That needs root and
# a machine where no syslog daemon holds /dev/log, as on CI.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use Socket qw(SOCK_DGRAM);
use IO::Socket::UNIX;
use SluiceTest qw(wait_until);

plan skip_all => 'owning /dev/log needs root' if $< != 0;
plan skip_all => '/dev/log belongs to a running syslog daemon' if -e '/dev/log';

my $log = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => '/dev/log')
	or die "cannot bind /dev/log: $!";
chmod 0666, '/dev/log';
END { unlink '/dev/log' if $log }

my @got;
sub collect {
	my ($re, $timeout) = @_;
	my $sel = IO::Select->new($log);
	my $deadline = time + ($timeout // 10);
	while (time < $deadline) {
		return $_ for grep { /$re/ } @got;
		next unless $sel->can_read(0.2);
		$log->recv(my $dgram, 8192);
		push @got, $dgram;
	}
	return (grep { /$re/ } @got)[0];
}

my $d = SluiceTest->new(start => 0);
my ($rc, $out) = $d->start_daemon;
is($rc, 0, '`sluice start` exits 0') or diag($out);
my $pid = $d->pidfile_pid;

my $line = collect(qr/daemon started/);
ok(defined $line, 'the master logs to syslog');
like($line // '', qr/^<22>\w{3} [ \d]\d \d\d:\d\d:\d\d sluice\/master\[$pid\]: daemon started -- version \S+, configuration \S+$/,
     'facility mail, priority info (<22>), Postfix\'s shape');

my $c = $d->smtp;
$c->read_reply;
$c->cmd('QUIT');
like(collect(qr/sluice\/smtpd\[\d+\]: disconnect from/) // '',
     qr/^<22>.* sluice\/smtpd\[\d+\]: disconnect from \S+\[127\.0\.0\.1\] quit=1 commands=1$/,
     'workers log there too');
($rc, $out) = $d->sluice('stop');
is($rc, 0, 'stopped');

$d->set_main(syslog_facility => 'local3', syslog_name => 'mx-in');
($rc, $out) = $d->start_daemon;
is($rc, 0, 'started again with another facility and name');
$pid = $d->pidfile_pid;
like(collect(qr/mx-in\/master\[$pid\]: daemon started/) // '',
     qr/^<158>/, 'syslog_facility = local3 (<158> = local3.info), syslog_name = mx-in');
$d->sluice('stop');

done_testing;
