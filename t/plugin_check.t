#!/usr/bin/perl
# plugin_check.t - plugins check their own parameter values
# (sluice_plugin_check, plugins/sluice_plugin.h): `sluice check` reports
# a bad enum-like value of the clamav and greylist plugins as
# "main.cf:LINE: name: problem; fix" and exits 1, a good configuration
# stays silent, and a worker refuses to start the plugin with the same
# line in the log rather than starting and failing on the first message.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceConf qw(conf_dir run_sluice $SLUICE $CLEAN_MAIN);
use SluiceTest;

BAIL_OUT("$SLUICE is not built") unless -x $SLUICE;
my $PLUGINS = "$SluiceConf::ROOT/build/plugins";
BAIL_OUT('the clamav plugin is not built') unless -e "$PLUGINS/clamav.so";

my $M = $CLEAN_MAIN . "plugin_directory = $PLUGINS\n";    # lines 1-3

sub check {
	my ($main) = @_;
	my $top = conf_dir(main => $main);
	mkdir "$top/spool";
	return run_sluice($top, 'check');
}

my ($rc, $out, $err) = check($M . "sluice_plugins = clamav\nclamav_mode = clamd\nclamav_action = hold\n");
is("$rc:$err", '0:', 'good values: silent, exit 0');

($rc, $out, $err) = check($M . "sluice_plugins = clamav\nclamav_mode = clamd\nclamav_action = bogus\n");
is($err, qq{conf/main.cf:6: clamav_action: unknown value "bogus"; use one of: reject hold discard tag\n},
   'clamav_action = bogus: file:line, the parameter, the problem and the fix');
is($rc, 1, '... exit 1');

($rc, $out, $err) = check($M . "sluice_plugins = clamav\nclamav_failure_action = Accept\nclamav_mode = tcp\n");
is($err, qq{conf/main.cf:6: clamav_mode: unknown value "tcp"; use one of: libclamav clamd\n},
   'clamav_mode: a second parameter; values are case-insensitive (Accept is fine)');
is($rc, 1, '... exit 1');

($rc, $out, $err) = check($M . "greylist_store_failure_action = maybe\n");
is($err, qq{conf/main.cf:4: greylist_store_failure_action: unknown value "maybe"; use one of: dunno defer\n},
   'greylist (loaded by default): greylist_store_failure_action = maybe');
is($rc, 1, '... exit 1');

($rc, $out, $err) = check($M . "greylist_store = memcached:localhost\n");
like($err, qr{^conf/main\.cf:4: greylist_store: unknown store "memcached:localhost"; use lmdb:/path or redis:host:port\[/db\]$}m,
   'greylist_store: an unknown store type');

# start-up: the worker refuses the plugin, with the same line in the log
my $t = SluiceTest->new(start => 0);
$t->set_main(sluice_plugins => 'clamav', clamav_mode => 'clamd',
	     clamav_action => 'bogus');
eval { $t->start };
ok($t->wait_log(qr/clamav_action: unknown value "bogus"; use one of: reject hold discard tag/, 10),
   'start-up: the bad value is logged with its file:line shape');
like($t->log_text, qr{main\.cf:\d+: clamav_action: unknown value "bogus"}, '... naming main.cf and the line');
like($t->log_text, qr/plugin "clamav" .*a parameter has a bad value/, '... and the plugin is refused');

done_testing;
