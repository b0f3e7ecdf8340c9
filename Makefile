# posthorn — GNU make. Targets: all deps run check test unit integration lint bench install clean
# Variables: PREFIX (/usr/local), DESTDIR, SYSCONFDIR, CXX, V=1 for verbose test output.

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
DESTDIR    ?=

CXX        ?= g++
PKGS       := libevent libtls libcrypto libcurl inih libcjson libseccomp libcrypt
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS:= $(shell pkg-config --libs cmocka 2>/dev/null)

CXXFLAGS   ?= -O2 -g
CXXFLAGS   += -std=c++20 -Wall -Wextra -Werror -Wno-missing-field-initializers \
              -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -MMD -MP \
              -I. $(PKG_CFLAGS)
LDFLAGS    += -Wl,-z,relro,-z,now
LDLIBS     += $(PKG_LIBS)

BUILD      := build

# Debian packages: build, test, and what `make run` needs.
DEB_BUILD  := g++ make pkg-config libevent-dev libtls-dev libssl-dev libcurl4-openssl-dev libinih-dev \
              libcjson-dev libcmocka-dev libseccomp-dev libcrypt-dev
DEB_TEST   := python3 python3-pytest python3-aiosmtpd swaks openssl nodejs prometheus mandoc procps ca-certificates
DEB_ALL    := $(DEB_BUILD) $(DEB_TEST)

COMMON_SRCS := $(sort $(wildcard common/*.cc))
DAEMON_SRCS := $(sort $(wildcard posthornd/*.cc smtpd/*.cc httpd/*.cc relayer/*.cc))
CTL_SRCS    := $(sort $(wildcard posthornctl/*.cc))
UNIT_SRCS   := $(sort $(wildcard regress/unit/test_*.cc))

OBJ         := $(BUILD)/obj
COMMON_OBJS := $(COMMON_SRCS:%.cc=$(OBJ)/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.cc=$(OBJ)/%.o)
CTL_OBJS    := $(CTL_SRCS:%.cc=$(OBJ)/%.o)
UNIT_BINS   := $(UNIT_SRCS:regress/unit/%.cc=$(BUILD)/regress/%)

MAIN_OBJ    := $(OBJ)/posthornd/posthornd.o
LIB_OBJS    := $(filter-out $(MAIN_OBJ),$(DAEMON_OBJS))
LIBCOMMON   := $(BUILD)/libposthorn.a
LIBDAEMON   := $(BUILD)/libposthornd.a
POSTHORND   := $(BUILD)/posthornd
POSTHORNCTL := $(BUILD)/posthornctl
PROGS       := $(POSTHORND) $(if $(CTL_SRCS),$(POSTHORNCTL))

PYTHON      := /usr/bin/python3

.SECONDARY:
.PHONY: all deps users run check test unit integration lint bench install clean

all: $(PROGS)

Q := $(if $(V),,@)

$(OBJ)/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "CXX $<")
	$(Q)$(CXX) $(CXXFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBDAEMON): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(POSTHORND): $(MAIN_OBJ) $(LIBDAEMON) $(LIBCOMMON)
	$(CXX) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIBDAEMON) $(LIBCOMMON) $(LDLIBS)

$(POSTHORNCTL): $(CTL_OBJS) $(LIBCOMMON)
	$(CXX) $(LDFLAGS) -o $@ $(CTL_OBJS) $(LIBCOMMON) $(LDLIBS)

# Unit tests link the daemon's code as libraries: only what a test uses is pulled in.
$(BUILD)/regress/%: $(OBJ)/regress/unit/%.o $(LIBDAEMON) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $< $(LIBDAEMON) $(LIBCOMMON) $(LDLIBS) $(CMOCKA_LIBS)

# Install any missing Debian package; without root, print the exact command and fail.
deps:
	@missing=""; for p in $(DEB_ALL); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; exit 0; fi; \
	cmd="apt-get install -y --no-install-recommends$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing packages; run as root:"; echo "  apt-get update && $$cmd"; exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$cmd

# The service users of INSTALL (root only; a no-op when they exist).
users:
	@if [ "$$(id -u)" = 0 ]; then \
	  getent group _posthorn >/dev/null || groupadd --system _posthorn; \
	  getent passwd _posthorn >/dev/null || useradd --system -g _posthorn -d /var/lib/posthorn/empty -s /usr/sbin/nologin _posthorn; \
	  getent group _posthorn_relay >/dev/null || groupadd --system _posthorn_relay; \
	  getent passwd _posthorn_relay >/dev/null || useradd --system -g _posthorn_relay -d /var/spool/posthorn -s /usr/sbin/nologin _posthorn_relay; \
	fi

# Start posthornd in the foreground on loopback with the file transport (./var/outbox).
run: deps users
	@$(MAKE) --no-print-directory all
	@mkdir -p var/outbox var/spool
	@sed 's,@TOP@,$(CURDIR),g' etc/posthorn-dev.conf.in > var/posthorn.conf && chmod 600 var/posthorn.conf
	@if [ "$$(id -u)" = 0 ]; then chown _posthorn_relay:_posthorn_relay var/outbox; fi
	@echo "posthornd: SMTP on 127.0.0.1:2525, HTTP on 127.0.0.1:8080, mail lands in ./var/outbox"
	$(POSTHORND) -d -f var/posthorn.conf

unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
	  if $$t >$$t.log 2>&1; then echo "PASS $$t"; else echo "FAIL $$t"; cat $$t.log; fail=1; fi; \
	done; exit $$fail

integration: $(PROGS)
	cd regress/integration && POSTHORND=$(CURDIR)/$(POSTHORND) POSTHORNCTL=$(CURDIR)/$(POSTHORNCTL) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider $(if $(V),-v) .

lint:
	@out=$$(for f in man/*.[0-9]; do mandoc -Tlint -Wwarning $$f; done 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "lint: man pages clean"

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

test: check

# Benchmarks need Postfix's smtp-source/smtp-sink and wrk; installed here, not for check.
bench: all
	@for p in postfix wrk; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || \
	  { echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; }; done
	POSTHORND=$(CURDIR)/$(POSTHORND) regress/bench/run

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(SYSCONFDIR)/posthorn $(DESTDIR)$(UNITDIR)
	install -m 0555 $(PROGS) $(DESTDIR)$(SBINDIR)/
	install -m 0444 man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0444 man/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 etc/posthorn.conf $(DESTDIR)$(SYSCONFDIR)/posthorn/posthorn.conf.example
	sed 's,@SBINDIR@,$(SBINDIR),g' etc/posthornd.service > $(DESTDIR)$(UNITDIR)/posthornd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/posthornd.service
	install -d $(DESTDIR)$(PREFIX)/share/posthorn/rc.d/openbsd $(DESTDIR)$(PREFIX)/share/posthorn/rc.d/freebsd
	for os in openbsd freebsd; do \
	  sed 's,@SBINDIR@,$(SBINDIR),g' etc/rc.d/$$os/posthornd > $(DESTDIR)$(PREFIX)/share/posthorn/rc.d/$$os/posthornd && \
	  chmod 0555 $(DESTDIR)$(PREFIX)/share/posthorn/rc.d/$$os/posthornd || exit 1; \
	done
	install -d -m 0755 $(DESTDIR)/var/lib/posthorn $(DESTDIR)/var/lib/posthorn/empty
	install -d -m 0700 $(DESTDIR)/var/spool/posthorn
	@if [ -z "$(DESTDIR)" ]; then $(MAKE) --no-print-directory users; \
	  [ "$$(id -u)" = 0 ] && chown _posthorn_relay:_posthorn_relay /var/spool/posthorn || true; fi

clean:
	rm -rf $(BUILD)

-include $(COMMON_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(CTL_OBJS:.o=.d) $(UNIT_SRCS:%.cc=$(OBJ)/%.d)
