# Makefile - build sluice into build/, run it, test it.
#
#   make          build everything (build/bin/*, build/plugins/*.so)
#   make run      install missing packages, build, run sluice in the
#                 foreground on conf/ (127.0.0.1:2525, spool under var/)
#   make test     install missing packages, build, run every test (prove)
#   make bench    benchmarks against Postfix, side by side
#   make CC=clang builds with clang; warnings are errors under both.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CPPFLAGS += -I. -Imta -Iplugins -D_GNU_SOURCE \
	-DSLUICE_CONFIG_DIR='"$(SYSCONFDIR)"' -DSLUICE_PLUGIN_DIR='"$(PLUGINDIR)"'
PREFIX  ?= /usr/local
SYSCONFDIR ?= /etc/sluice
PLUGINDIR ?= $(PREFIX)/lib/sluice/plugins

PKGS    := libevent libevent_pthreads libevent_openssl libssl libcrypto libcares lmdb libpcre2-8 libsasl2
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -levent -levent_pthreads -levent_openssl -lssl -lcrypto -lcares -llmdb -lpcre2-8 -lsasl2) -lpthread -ldl -lm

B       := build
# Programs other than sluice: their main() lives in mta/NAME_main.c and
# they link with the core objects (build/bin/sendmail from sendmail_main.c).
PROG_SRC := $(wildcard mta/*_main.c)
PROGS   := $(patsubst mta/%_main.c,$(B)/bin/%,$(PROG_SRC))
MTA_SRC := $(filter-out $(PROG_SRC),$(wildcard mta/*.c)) plugins/plugin_loader.c \
	$(filter-out %_main.c,$(wildcard policy/*.c))
MTA_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(MTA_SRC))
# Every directory here holding .c files becomes build/plugins/NAME.so
PLUGIN_DIRS := plugins/example $(wildcard filters/*)
PLUGINS := $(foreach d,$(PLUGIN_DIRS),$(B)/plugins/$(notdir $(d)).so)
# C unit tests: t/unit/NAME.c -> build/t/NAME (TAP on stdout), linked with
# the core objects (minus main).
UNIT_SRC := $(wildcard t/unit/*.c)
UNIT_BIN := $(patsubst t/unit/%.c,$(B)/t/%,$(UNIT_SRC))
CORE_OBJ := $(filter-out $(B)/obj/mta/sluice.o,$(MTA_OBJ))

# mailq and newaliases are sendmail under other names (argv[0]).
LINKS   := $(B)/bin/mailq $(B)/bin/newaliases

all: $(B)/bin/sluice $(PROGS) $(B)/bin/sluice-policyd $(LINKS) $(PLUGINS) $(UNIT_BIN) $(B)/t/test_milter

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -fPIC -MMD -MP -c -o $@ $<

$(B)/bin/sluice: $(MTA_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LIBS)

$(B)/bin/%: $(B)/obj/mta/%_main.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LIBS)

# The policy server (policy/policyd_main.c).
$(B)/bin/sluice-policyd: $(B)/obj/policy/policyd_main.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -rdynamic -o $@ $^ $(LIBS)

# sluice-milterd: the plugins hosted behind libmilter (plugins/milterd_*.c)
$(B)/bin/sluice-milterd: $(patsubst %.c,$(B)/obj/%.o,$(wildcard plugins/milterd_*.c))
$(B)/bin/sluice-milterd: LIBS += -lmilter

$(LINKS): $(B)/bin/sendmail
	ln -sf sendmail $@

.SECONDEXPANSION:
$(B)/plugins/%.so: $$(addprefix $(B)/obj/,$$(addsuffix .o,$$(basename $$(wildcard plugins/$$*/*.c filters/$$*/*.c))))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $^ $(PLUGIN_LIBS)

# Only the clamav plugin links libclamav; the core never does.
$(B)/plugins/clamav.so: PLUGIN_LIBS = $(shell pkg-config --libs libclamav 2>/dev/null || echo -lclamav)
# The greylist plugin's stores: hiredis (Redis) and LMDB.
$(B)/plugins/greylist.so: PLUGIN_LIBS = -lhiredis -llmdb -lpthread

$(B)/t/%: t/unit/%.c $(wildcard t/unit/*.h) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -rdynamic -o $@ $< $(CORE_OBJ) $(LIBS)

# The libmilter test milter the milter tests drive (t/milter/).
$(B)/t/test_milter: t/milter/test_milter.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -pthread -o $@ $< -lmilter

deps:
	@scripts/install-deps

run: deps all
	@mkdir -p var
	$(B)/bin/newaliases -C conf
	$(B)/bin/sluice -c conf run

# The build must stay clean under clang as well as gcc (-Werror both).
clang-check:
	$(MAKE) -s CC=clang B=$(B)/clang $(B)/clang/bin/sluice $(patsubst $(B)/%,$(B)/clang/%,$(PROGS) $(PLUGINS)) $(B)/clang/bin/sluice-policyd

test: deps all clang-check
	prove $(UNIT_BIN) -r t

bench: deps all
	@bench/run

clean:
	rm -rf $(B)

.PHONY: all deps run test bench clean clang-check
# Keep the objects of plugins and programs (intermediate to make).
.SECONDARY:
-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
