/*
 * t/unit/mime_downgrade.c - the 8-bit to 7-bit MIME conversion
 * (mta/mime_downgrade.c), TAP.
 *
 * What a user of a 7-bit next hop would check: a converted message is
 * 7-bit, its lines are at most 76 columns, it decodes back (RFC 2045
 * quoted-printable) to the original text, the Content-Transfer-Encoding
 * headers say what was done; and what Postfix leaves alone stays byte
 * for byte the same: 7-bit mail, parts declared 7bit, base64 or
 * quoted-printable, parts without a Content-Transfer-Encoding header.
 * The result must not depend on how the input is cut into pieces.
 */
#include <stdlib.h>
#include <string.h>

#include "mime_downgrade.h"
#include "tap.h"

struct buf {
	char *p;
	size_t n, cap;
};

static void put(void *arg, const char *p, size_t n)
{
	struct buf *b = arg;

	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
}

/* Convert `in`, fed in pieces of `step` bytes (0: at once). */
static char *conv(const char *in, size_t step, bool *changed)
{
	struct buf b = { 0 };
	struct mime_dg *m = mime_dg_new(put, &b);
	size_t n = strlen(in);

	put(&b, "", 0);
	if (step == 0)
		step = n ? n : 1;
	for (size_t i = 0; i < n; i += step)
		mime_dg_update(m, in + i, n - i < step ? n - i : step);
	mime_dg_finish(m);
	if (changed)
		*changed = mime_dg_changed(m);
	mime_dg_free(m);
	return b.p;
}

static bool seven_bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s > 127)
			return false;
	return true;
}

static size_t longest_line(const char *s)
{
	size_t best = 0, cur = 0;

	for (; *s; s++) {
		if (*s == '\n') {
			cur = 0;
			continue;
		}
		if (++cur > best)
			best = cur;
	}
	return best;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* RFC 2045 6.7 decoding of a whole text. */
static char *qp_decode(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	while (*s) {
		if (s[0] == '=' && s[1] == '\n') {
			s += 2;
		} else if (s[0] == '=' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 3;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
	return out;
}

/* The body after the first empty line. */
static const char *body_of(const char *msg)
{
	const char *p = strstr(msg, "\n\n");

	return p ? p + 2 : "";
}

static void unchanged(const char *name, const char *in)
{
	bool changed = true;
	char *out = conv(in, 0, &changed);

	ok(strcmp(out, in) == 0 && !changed, "%s: passes unchanged", name);
	free(out);
	out = conv(in, 1, NULL);
	ok(strcmp(out, in) == 0, "%s: ... also fed byte by byte", name);
	free(out);
}

int main(void)
{
	static const char text[] =
		"Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln, caf\xc3\xa9 = 3 \xe2\x82\xac.\n"
		"A line with trailing space \n"
		"Tab at the end\t\n"
		"From the start, and a dot:\n"
		".\n"
		"Long: \xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc "
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
		"\xc3\xa4\xc3\xb6\xc3\xbc\xc3\xa4\xc3\xb6\xc3\xbc bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n";
	char msg[4096], *out, *dec;
	bool changed = false;

	/* ---- what stays as it is ---- */
	unchanged("7-bit mail without MIME headers",
		  "From: a@example.org\nSubject: hi\n\nplain text\n-- \nsig\n");
	unchanged("8-bit body without Content-Transfer-Encoding (Postfix sends it as is)",
		  "Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
		  "K\xc3\xb6ln\n");
	unchanged("a part declared 7bit",
		  "Content-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\nhello\n");
	unchanged("base64 and quoted-printable parts",
		  "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
		  "preamble\n--b1\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
		  "K=C3=B6ln\n--b1\nContent-Type: application/octet-stream\n"
		  "Content-Transfer-Encoding: base64\n\nAAECAwQ=\n--b1--\nepilogue\n");
	{
		char *lng = malloc(20000);

		strcpy(lng, "Subject: long\n\n");
		memset(lng + strlen(lng), 'x', 12000);
		strcpy(lng + 15 + 12000, "\nend\n");
		unchanged("a 12000-byte line in a 7-bit part", lng);
		free(lng);
	}
	unchanged("a last line without LF", "Subject: x\n\nno newline at the end");

	/* ---- a single 8bit part ---- */
	snprintf(msg, sizeof msg, "From: a@example.org\nMIME-Version: 1.0\n"
		 "Content-Type: text/plain; charset=utf-8\n"
		 "Content-Transfer-Encoding: 8bit\nSubject: s\n\n%s", text);
	out = conv(msg, 0, &changed);
	ok(changed, "8bit text/plain: converted");
	ok(seven_bit(out), "... the result is 7-bit");
	ok(longest_line(out) <= 76, "... no line longer than 76 (longest %zu)",
	   longest_line(out));
	ok(strstr(out, "Content-Transfer-Encoding: 8bit") == NULL,
	   "... the 8bit header is gone");
	ok(strstr(out, "\nSubject: s\nContent-Transfer-Encoding: quoted-printable\n\n") != NULL,
	   "... Content-Transfer-Encoding: quoted-printable ends the header block");
	ok(strncmp(out, "From: a@example.org\nMIME-Version: 1.0\n", 38) == 0,
	   "... the other headers are untouched");
	dec = qp_decode(body_of(out));
	ok(strcmp(dec, text) == 0, "... and the body decodes back to the original text");
	if (strcmp(dec, text) != 0)
		diag("got:\n%s", out);
	free(dec);
	ok(strstr(out, "trailing space=20\n") && strstr(out, "Tab at the end=09\n"),
	   "... trailing blanks are encoded");
	ok(strstr(out, "caf=C3=A9 =3D 3 =E2=82=AC.") != NULL, "... '=' and 8-bit bytes as =XX");
	{
		char *pieces = conv(msg, 7, NULL), *bytes = conv(msg, 1, NULL);

		ok(strcmp(pieces, out) == 0 && strcmp(bytes, out) == 0,
		   "... the same output whatever the input pieces");
		free(pieces);
		free(bytes);
	}
	free(out);

	/* binary is converted too; a folded CTE header is recognised */
	out = conv("Content-Transfer-Encoding:\n\tbinary\n\n\xff\n", 0, &changed);
	ok(changed && strcmp(out, "Content-Transfer-Encoding: quoted-printable\n\n=FF\n") == 0,
	   "a folded \"binary\" header: quoted-printable");
	free(out);

	/* ---- multipart, nested message ---- */
	snprintf(msg, sizeof msg,
		 "MIME-Version: 1.0\n"
		 "Content-Type: multipart/mixed;\n boundary=\"=_outer (x)\"\n"
		 "Content-Transfer-Encoding: 8bit\n\n"
		 "This is a multi-part message.\n"
		 "--=_outer (x)\n"
		 "Content-Type: text/plain; charset=utf-8\n"
		 "Content-Transfer-Encoding: 8bit\n\n"
		 "K\xc3\xb6ln\n"
		 "--=_outer (x)\n"
		 "Content-Type: application/octet-stream\n"
		 "Content-Transfer-Encoding: base64\n\n"
		 "AAECAwQ=\n"
		 "--=_outer (x)\n"
		 "Content-Type: message/rfc822\n"
		 "Content-Transfer-Encoding: 8bit\n\n"
		 "Subject: inner\n"
		 "Content-Type: text/plain; charset=utf-8\n"
		 "Content-Transfer-Encoding: 8bit\n\n"
		 "M\xc3\xbcnchen\n"
		 "--=_outer (x)--\n"
		 "epilogue \xc3\xa9\n");
	out = conv(msg, 0, &changed);
	ok(changed && seven_bit(out) == false,
	   "multipart: converted (the epilogue, declared nothing, keeps its 8-bit byte)");
	ok(strstr(out, "boundary=\"=_outer (x)\"\nContent-Transfer-Encoding: 7bit\n\n") != NULL,
	   "... the multipart is declared 7bit");
	ok(strstr(out, "charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nK=C3=B6ln\n--=_outer (x)\n") != NULL,
	   "... its 8bit text part is quoted-printable");
	ok(strstr(out, "Content-Transfer-Encoding: base64\n\nAAECAwQ=\n") != NULL,
	   "... the base64 part is untouched");
	ok(strstr(out, "Content-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\nSubject: inner\n") != NULL,
	   "... the message/rfc822 part is declared 7bit");
	ok(strstr(out, "Content-Transfer-Encoding: quoted-printable\n\nM=C3=BCnchen\n--=_outer (x)--\n") != NULL,
	   "... and the message inside it is converted");
	ok(strstr(out, "\nepilogue \xc3\xa9\n") != NULL, "... the epilogue is as it was");
	{
		char *bytes = conv(msg, 1, NULL);

		ok(strcmp(bytes, out) == 0, "... the same output fed byte by byte");
		free(bytes);
	}
	free(out);

	/* headers only, 8bit declared: the header still comes out */
	out = conv("Subject: x\nContent-Transfer-Encoding: 8bit", 0, &changed);
	ok(strcmp(out, "Subject: x\nContent-Transfer-Encoding: quoted-printable\n") == 0,
	   "headers only, no final LF: the replacement header on its own line");
	free(out);

	/* a message without the empty line: Postfix adds one */
	out = conv("Content-Transfer-Encoding: 8bit\nnot a header \xe9\n", 0, NULL);
	ok(strcmp(out, "Content-Transfer-Encoding: quoted-printable\n\nnot a header =E9\n") == 0,
	   "headers ended by a non-header line: an empty line is added, the line converted");
	free(out);

	return tap_done();
}
