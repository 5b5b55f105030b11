/*
 * t/unit/sasl.c - the SASL helpers of sasl_server.c: base64 both ways
 * (RFC 4648 vectors, what PLAIN responses look like, rejected input) and
 * the security options parser (Postfix's words, an unknown one refused).
 */
#include <stdlib.h>
#include <string.h>

#include "sasl_server.h"
#include "tap.h"

static void b64_round(const char *in, const char *want)
{
	char enc[64];
	unsigned char dec[64];
	int n;

	sasl_b64_encode((const unsigned char *)in, strlen(in), enc);
	is_str(enc, want, want[0] ? want : "(empty)");
	n = sasl_b64_decode(want, dec, sizeof dec);
	ok(n == (int)strlen(in) && memcmp(dec, in, strlen(in)) == 0,
	   "decode %s -> \"%s\"", want, in);
}

int main(void)
{
	static const char *const vectors[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char buf[64];
	char enc[64];
	char *words[4];
	char err[128];
	int flags;

	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
		b64_round(vectors[i][0], vectors[i][1]);
	sasl_b64_encode((const unsigned char *)"\0alice\0wonderland", 17, enc);
	is_str(enc, "AGFsaWNlAHdvbmRlcmxhbmQ=", "a PLAIN response with its NULs");
	is_int(sasl_b64_decode("AGFsaWNlAHdvbmRlcmxhbmQ=", buf, sizeof buf), 17,
	       "... decodes to 17 bytes");
	is_int(sasl_b64_decode("Zm9!", buf, sizeof buf), -1, "not base64: -1");
	is_int(sasl_b64_decode("Zm9", buf, sizeof buf), -1, "not a multiple of 4: -1");
	is_int(sasl_b64_decode("Zg==Zg==", buf, sizeof buf), -1, "padding inside: -1");
	is_int(sasl_b64_decode("Zm9vYmFy", buf, 3), -1, "output too small: -1");

	words[0] = "noplaintext"; words[1] = "NOANONYMOUS"; words[2] = NULL;
	ok(sasl_security_flags(words, &flags, err, sizeof err) == 0
	   && flags == (SASL_OPT_NOPLAINTEXT | SASL_OPT_NOANONYMOUS),
	   "noplaintext, noanonymous (any case)");
	words[0] = "noplain"; words[1] = NULL;
	ok(sasl_security_flags(words, &flags, err, sizeof err) < 0
	   && strstr(err, "\"noplain\"") != NULL, "an unknown option is refused, by name");
	words[0] = NULL;
	ok(sasl_security_flags(words, &flags, err, sizeof err) == 0 && flags == 0,
	   "an empty list: no restriction");
	return tap_done();
}
