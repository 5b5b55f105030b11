/*
 * check_warnings.h - the semantic warnings of `sluice check`: a
 * configuration that loads but is probably not what the admin meant.
 *
 *  - mynetworks entries wider than sluice_check_mynetworks_prefix (IPv4)
 *    or sluice_check_mynetworks_prefix6 (IPv6) that hold public address
 *    space (with their size);
 *  - relay control that permits everyone: no reject_unauth_destination,
 *    defer_unauth_destination, reject, defer or defer_if_permit before an
 *    unconditional permit (permit, a class that permits, a static:OK
 *    table, permit_mynetworks with mynetworks = 0.0.0.0/0) in both
 *    smtpd_relay_restrictions and smtpd_recipient_restrictions;
 *  - restrictions written after an unconditional permit, reject or defer
 *    in a list (they are never evaluated);
 *  - a listener offering AUTH without requiring TLS first;
 *  - hash: tables never built, or older than their source text;
 *  - every table the configuration names is opened, so errors in pattern
 *    tables (cidr, pcre, regexp) come with their file:line.
 *
 * Every message is "file:line: what; how to fix" at the place the
 * parameter is set (main.cf, or master.cf for a listener's -o).
 */
#ifndef SLUICE_CHECK_WARNINGS_H
#define SLUICE_CHECK_WARNINGS_H

struct diag;
struct sluice_config;

/* Add the warnings (and table errors) for sc to d.  main_path is
 * main.cf as messages name it. */
void check_warnings(struct diag *d, const struct sluice_config *sc,
		    const char *main_path);

#endif
