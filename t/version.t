#!/usr/bin/perl
# version.t - `sluice version` names the version, the plugin ABI, and each
# feature with "yes (library version)" or "no", and exits 0.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use SluiceTest;

my $out = `$SluiceTest::SLUICE version 2>&1`;
is($?, 0, 'exits 0');
like($out, qr/^sluice \d+\.\d+\.\d+$/m, 'the version');
like($out, qr/^plugin ABI 2$/m, 'the plugin ABI');
like($out, qr/^  event loop\s+yes \(libevent 2\.\d/m, 'the event loop, with libevent\'s version');
like($out, qr/^  async DNS\s+yes \(c-ares 1\.\d/m, 'async DNS, with c-ares\' version');
like($out, qr/^  PCRE2\s+yes \(PCRE2 10\.\d/m, 'PCRE2, with its version');
like($out, qr/^  LMDB\s+yes \(LMDB 0\.\d/m, 'LMDB, with its version');
like($out, qr/^  TLS \(OpenSSL\)\s+(yes|no)/m, 'TLS is listed, yes or no');
done_testing;
