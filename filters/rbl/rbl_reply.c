/*
 * rbl_reply.c - the reply to a client, helo name, sender or recipient a
 * DNSBL lists: Postfix's rbl_reject_reply().
 *
 * The template is rbl_reply_maps' value (its tables split as the core
 * splits lists, so an inline:{ a=b, c=d } table is one) for the
 * restriction's argument as written ("zen.example" or "zen.example=127.0.0.2"), else
 * default_rbl_reply ("$rbl_code Service unavailable; $rbl_class
 * [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}").
 * It is expanded with Postfix's $name syntax: $name, ${name},
 * ${name?text} (text when the value is not empty), ${name:text} (text
 * when it is), $$; the names are rbl_code (maps_rbl_reject_code),
 * rbl_domain, rbl_reason and rbl_txt (the TXT records, " / " between
 * them), rbl_what, rbl_class, and the session's client_address,
 * client_name, reverse_client_name, client_port, helo_name, sender,
 * sender_name, sender_domain, recipient, recipient_name,
 * recipient_domain.  Characters of a value outside Postfix's default
 * smtpd_expand_filter (printable ASCII, space and tab) become "_".
 *
 * As in Postfix: a map template that does not parse is logged and the
 * default is used; a result that does not start with a 4xx/5xx code and
 * a space is logged ("rbl response code configuration error") and
 * answered "450 4.7.1 Service unavailable"; the enhanced code is the one
 * written after the code, else 4.7.1, its class set to the code's; a
 * table that fails is "451 4.3.5 Server configuration error".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rbl.h"

#define RBL_REPLY_MAX   2048    /* an SMTP reply line is shorter anyway */

struct expansion {
	sluice_txn *t;
	const struct rbl_listing *l;
	char code[16];
	char *out;
	size_t len, size;
	char part[1024];        /* a computed value (sender_name, ...) */
};

static void put(struct expansion *x, const char *s, size_t n)
{
	while (n-- > 0 && x->len + 1 < x->size)
		x->out[x->len++] = *s++;
	x->out[x->len] = 0;
}

/* A value, through (the default of) Postfix's smtpd_expand_filter. */
static void put_filtered(struct expansion *x, const char *v)
{
	for (; *v; v++) {
		char c = *v;

		if (!(isprint((unsigned char)c) || c == '\t'))
			c = '_';
		put(x, &c, 1);
	}
}

/* The local part or the domain of an address. */
static const char *address_part(struct expansion *x, const char *addr,
				bool domain)
{
	const char *at;

	if (addr == NULL)
		return NULL;
	at = strrchr(addr, '@');
	if (domain)
		return at ? at + 1 : "";
	snprintf(x->part, sizeof x->part, "%.*s",
		 (int)(at ? (size_t)(at - addr) : strlen(addr)), addr);
	return x->part;
}

/* The value of $name, or NULL when it has none. */
static const char *lookup(struct expansion *x, const char *name)
{
	sluice_txn *t = x->t;

	if (strcmp(name, "rbl_code") == 0)
		return x->code;
	if (strcmp(name, "rbl_domain") == 0)
		return x->l->domain;
	if (strcmp(name, "rbl_reason") == 0 || strcmp(name, "rbl_txt") == 0)
		return x->l->txt ? x->l->txt : "";
	if (strcmp(name, "rbl_what") == 0)
		return x->l->what;
	if (strcmp(name, "rbl_class") == 0)
		return x->l->reply_class;
	if (strcmp(name, "client_address") == 0)
		return sluice_client_addr(t);
	if (strcmp(name, "client_name") == 0)
		return sluice_client_name(t);
	if (strcmp(name, "reverse_client_name") == 0)
		return sluice_attr(t, "{client_ptr}");
	if (strcmp(name, "client_port") == 0) {
		snprintf(x->part, sizeof x->part, "%d", sluice_client_port(t));
		return x->part;
	}
	if (strcmp(name, "helo_name") == 0)
		return sluice_helo_name(t);
	if (strcmp(name, "sender") == 0)
		return sluice_sender(t);
	if (strcmp(name, "sender_name") == 0)
		return address_part(x, sluice_sender(t), false);
	if (strcmp(name, "sender_domain") == 0)
		return address_part(x, sluice_sender(t), true);
	if (strcmp(name, "recipient") == 0)
		return sluice_recipient(t);
	if (strcmp(name, "recipient_name") == 0)
		return address_part(x, sluice_recipient(t), false);
	if (strcmp(name, "recipient_domain") == 0)
		return address_part(x, sluice_recipient(t), true);
	return NULL;
}

static int expand(struct expansion *x, const char *s, size_t n);

/* "${name...}" at s (after "${"); *used is what it took.  0 or -1. */
static int expand_braced(struct expansion *x, const char *s, size_t n,
			 size_t *used)
{
	char name[64];
	size_t i = 0, depth = 1, start;
	const char *v;
	char op;

	while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
		i++;
	if (i == 0 || i >= sizeof name || i >= n)
		return -1;
	snprintf(name, sizeof name, "%.*s", (int)i, s);
	op = s[i];
	if (op == '}') {
		*used = i + 1;
		if ((v = lookup(x, name)) != NULL)
			put_filtered(x, v);
		return 0;
	}
	if (op != '?' && op != ':')
		return -1;
	start = ++i;
	for (; i < n; i++) {
		if (s[i] == '{')
			depth++;
		else if (s[i] == '}' && --depth == 0)
			break;
	}
	if (i >= n)
		return -1;
	*used = i + 1;
	v = lookup(x, name);
	if ((op == '?') == (v != NULL && *v != 0))
		return expand(x, s + start, i - start);
	return 0;
}

static int expand(struct expansion *x, const char *s, size_t n)
{
	size_t i = 0, j, used;
	char name[64];
	const char *v;

	while (i < n) {
		if (s[i] != '$') {
			put(x, s + i++, 1);
			continue;
		}
		if (++i >= n)
			return -1;
		if (s[i] == '$') {
			put(x, "$", 1);
			i++;
		} else if (s[i] == '{') {
			if (expand_braced(x, s + i + 1, n - i - 1, &used) < 0)
				return -1;
			i += 1 + used;
		} else {
			for (j = i; j < n && (isalnum((unsigned char)s[j])
					      || s[j] == '_'); j++)
				;
			if (j == i || j - i >= sizeof name)
				return -1;
			snprintf(name, sizeof name, "%.*s", (int)(j - i), s + i);
			if ((v = lookup(x, name)) != NULL)
				put_filtered(x, v);
			i = j;
		}
	}
	return 0;
}

/* The template of rbl_reply_maps for the argument: 1 found, 0 not,
 * -1 a table failed. */
static int map_template(sluice_txn *t, const char *key, char *out,
			size_t outlen)
{
	const char *maps = sluice_txn_conf_str(t, "rbl_reply_maps");
	char **list, **item, err[512];
	const char *value;
	int found = 0;

	if (maps == NULL || *maps == 0)
		return 0;
	list = sluice_split_list(maps);     /* inline:{ a=b, c=d } is one */
	for (item = list; *item && found == 0; item++) {
		const char *spec = *item;
		sluice_map *m = sluice_map_open(spec, err, sizeof err);

		if (m == NULL) {
			sluice_txn_log(t, SLUICE_LOG_WARN, "rbl_reply_maps %s: %s",
				       spec, err);
			found = -1;
		} else if ((found = sluice_map_lookup(m, key, &value)) == 1) {
			snprintf(out, outlen, "%s", value);
			sluice_explain(t, "rbl_reply_maps %s: %s: found", spec,
				       key);
		}
	}
	sluice_list_free(list);
	return found;
}

static bool expand_template(struct expansion *x, const char *tmpl)
{
	x->len = 0;
	x->out[0] = 0;
	return expand(x, tmpl, strlen(tmpl)) == 0;
}

/* "5.7.1 " at the start of s: its length, else 0. */
static size_t dsn_length(const char *s)
{
	size_t i = 0;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	for (int part = 0, digits; part < 3; part++) {
		if (part == 0)
			i = 1;
		else if (s[i++] != '.')
			return 0;
		else {
			for (digits = 0; isdigit((unsigned char)s[i]); i++)
				digits++;
			if (digits < 1 || digits > 3)
				return 0;
		}
	}
	return s[i] == ' ' || s[i] == 0 ? i : 0;
}

int rbl_reply(sluice_txn *t, const struct rbl_listing *l)
{
	char out[RBL_REPLY_MAX], tmpl[RBL_REPLY_MAX], dsn[16] = "4.7.1";
	struct expansion x = { .t = t, .l = l, .out = out, .size = sizeof out };
	const char *def = sluice_txn_conf_str(t, "default_rbl_reply");
	const char *text;
	size_t dlen;
	int found, code;

	snprintf(x.code, sizeof x.code, "%lld",
		 sluice_txn_conf_int(t, "maps_rbl_reject_code"));
	if ((found = map_template(t, l->arg, tmpl, sizeof tmpl)) < 0) {
		sluice_reply(t, 451, "4.3.5", "Server configuration error");
		return SLUICE_DEFER;
	}
	if (found == 1 && !expand_template(&x, tmpl)) {
		sluice_txn_log(t, SLUICE_LOG_WARN, "rbl_reject_reply: bad rbl "
			       "reply template for domain %s: %s", l->arg, tmpl);
		found = 0;
	}
	if (found == 0 && !expand_template(&x, def ? def : "")) {
		sluice_txn_log(t, SLUICE_LOG_ERR, "rbl_reject_reply: bad "
			       "default rbl reply template: %s", def ? def : "");
		sluice_reply(t, 451, "4.3.5", "Server configuration error");
		return SLUICE_DEFER;
	}
	if ((out[0] != '4' && out[0] != '5') || !isdigit((unsigned char)out[1])
	    || !isdigit((unsigned char)out[2]) || out[3] != ' ') {
		sluice_txn_log(t, SLUICE_LOG_WARN, "rbl response code "
			       "configuration error: %s", out);
		sluice_reply(t, 450, "4.7.1", "Service unavailable");
		return SLUICE_DEFER;
	}
	code = atoi(out);
	text = out + 4;
	if ((dlen = dsn_length(text)) > 0) {
		snprintf(dsn, sizeof dsn, "%.*s", (int)dlen, text);
		text += dlen;
		text += strspn(text, " ");
	}
	dsn[0] = out[0];        /* the class follows the code, as in Postfix */
	sluice_reply(t, code, dsn, "%s", *text ? text : "Service unavailable");
	return SLUICE_REJECT;
}
