/*
 * tls_cmd.c - `sluice tls selfsigned [-f] [-d DAYS] [FILE]`: make a
 * private key and a self-signed certificate for $myhostname.
 *
 * Where it writes, first that applies:
 *   FILE given                 key and certificate in FILE (chain file)
 *   smtpd_tls_chain_files set  key and certificate in its first file
 *   smtpd_tls_cert_file set    the certificate there, the key in
 *                              smtpd_tls_key_file (the same file when
 *                              that is not set)
 *   otherwise                  CONFIG_DIR/smtpd.pem, and it says which
 *                              main.cf line makes sluice use it
 * Relative names are relative to the configuration directory, as the
 * server reads them (tls_common.c).
 *
 * Promises: a 2048-bit RSA key and an X.509 v3 certificate whose subject
 * CN and only subjectAltName is $myhostname, valid DAYS days (365);
 * files are created with mode 0600 (the key is secret; a file holding
 * only the certificate may be made readable afterwards); an existing
 * file is never replaced without -f.  It prints the certificate's and
 * the public key's sha256 fingerprints and how clients can trust it (a
 * fingerprint for Postfix's smtp_tls_security_level = fingerprint, or
 * the certificate, printed, as a CAfile).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "commands.h"
#include "config.h"
#include "tls_common.h"

#define SELFSIGNED_BITS 2048
#define SELFSIGNED_DAYS 365

static int usage(void)
{
	fprintf(stderr, "usage: sluice [-c CONFIG_DIR] tls selfsigned [-f] "
		"[-d DAYS] [FILE]\n");
	return 2;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return 0;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static X509 *make_cert(EVP_PKEY *key, const char *host, int days)
{
	X509 *cert = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn;
	char san[300];
	int ok;

	if (cert == NULL || RAND_bytes(serial, sizeof serial) != 1)
		return NULL;
	serial[0] &= 0x7f;          /* positive */
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	BN_free(bn);
	X509_set_version(cert, 2);
	X509_gmtime_adj(X509_getm_notBefore(cert), -300);
	X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				   (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	snprintf(san, sizeof san, "DNS:%s", host);
	ok = add_ext(cert, NID_subject_alt_name, san)
		&& add_ext(cert, NID_subject_key_identifier, "hash")
		&& add_ext(cert, NID_ext_key_usage, "serverAuth,clientAuth")
		&& X509_sign(cert, key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

/* Create `path` (mode 0600; with -f an existing file is replaced). */
static FILE *create_private(const char *path, bool force)
{
	int fd;

	if (force)
		unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "sluice tls selfsigned: cannot create %s: %s%s\n",
			path, strerror(errno), errno == EEXIST
			? " (use -f to replace it)" : "");
		return NULL;
	}
	fchmod(fd, 0600);
	return fdopen(fd, "w");
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, bool force)
{
	FILE *fp = create_private(path, force);
	int ok;

	if (fp == NULL)
		return -1;
	ok = (key == NULL || PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL))
		&& (cert == NULL || PEM_write_X509(fp, cert));
	if (fclose(fp) != 0 || !ok) {
		fprintf(stderr, "sluice tls selfsigned: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

/* The files to write: key_path and cert_path (the same for one file). */
struct targets {
	char *key_path, *cert_path;
	bool configured;            /* the configuration points there */
};

static char *resolve(const char *config_dir, const char *v)
{
	char *p;

	if (v[0] == '/')
		return strdup(v);
	if (asprintf(&p, "%s/%s", config_dir, v) < 0)
		return NULL;
	return p;
}

static void find_targets(const struct config *c, const char *config_dir,
			 const char *file, struct targets *t)
{
	char **chain = cfg_list(c, "smtpd_tls_chain_files");
	const char *cert = cfg_str(c, "smtpd_tls_cert_file");
	const char *key = cfg_str(c, "smtpd_tls_key_file");

	t->configured = true;
	if (file) {
		t->key_path = resolve(config_dir, file);
		t->configured = false;
	} else if (chain && chain[0]) {
		t->key_path = resolve(config_dir, chain[0]);
	} else if (*cert) {
		t->cert_path = resolve(config_dir, cert);
		t->key_path = resolve(config_dir, *key ? key : cert);
	} else {
		t->key_path = resolve(config_dir, "smtpd.pem");
		t->configured = false;
	}
	if (t->cert_path == NULL)
		t->cert_path = strdup(t->key_path);
	cfg_list_free(chain);
}

static void print_trust(const char *host, const struct targets *t, X509 *cert,
			int days)
{
	char *fp = tls_cert_fprint(cert, "sha256");
	char *pk = tls_pkey_fprint(cert, "sha256");

	printf("wrote a %d-bit RSA key and a self-signed certificate for %s "
	       "(valid %d days)\n", SELFSIGNED_BITS, host, days);
	if (strcmp(t->key_path, t->cert_path) == 0)
		printf("  key and certificate: %s (mode 0600)\n", t->key_path);
	else
		printf("  certificate: %s\n  key: %s (mode 0600)\n", t->cert_path,
		       t->key_path);
	if (!t->configured)
		printf("\nadd to main.cf:\n  smtpd_tls_chain_files = %s\n"
		       "  smtpd_tls_security_level = may\n", t->key_path);
	printf("\ncertificate fingerprint (sha256): %s\n", fp ? fp : "?");
	printf("public key fingerprint (sha256):  %s\n", pk ? pk : "?");
	printf("\nClients trust it either by fingerprint (Postfix: "
	       "smtp_tls_security_level = fingerprint,\n"
	       "  smtp_tls_fingerprint_digest = sha256, "
	       "smtp_tls_fingerprint_cert_match = %s)\n"
	       "or as a CA: save the certificate below as a file on the client "
	       "and point\n  smtp_tls_CAfile (Postfix, sluice), --tls-ca-path "
	       "(swaks) or -CAfile (openssl s_client) at it:\n\n", fp ? fp : "?");
	PEM_write_X509(stdout, cert);
	free(fp);
	free(pk);
}

static int selfsigned(const char *config_dir, const struct config *c,
		      const char *file, bool force, int days)
{
	const char *host = cfg_str(c, "myhostname");
	EVP_PKEY *key = EVP_RSA_gen(SELFSIGNED_BITS);
	X509 *cert = key ? make_cert(key, host, days) : NULL;
	struct targets t = { NULL, NULL, false };
	int rc = 1;

	if (cert == NULL) {
		char err[256];

		tls_error_text(err, sizeof err);
		fprintf(stderr, "sluice tls selfsigned: %s\n", err);
		goto out;
	}
	find_targets(c, config_dir, file, &t);
	if (t.key_path == NULL || t.cert_path == NULL)
		goto out;
	if (strcmp(t.key_path, t.cert_path) == 0) {
		if (write_pem(t.key_path, key, cert, force) < 0)
			goto out;
	} else if (write_pem(t.key_path, key, NULL, force) < 0
		   || write_pem(t.cert_path, NULL, cert, force) < 0) {
		goto out;
	}
	print_trust(host, &t, cert, days);
	rc = 0;
out:
	free(t.key_path);
	free(t.cert_path);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

int cmd_tls(const char *config_dir, int argc, char **argv)
{
	struct sluice_config *sc;
	struct diag d;
	const char *file = NULL;
	bool force = false;
	int days = SELFSIGNED_DAYS, opt, rc;

	if (argc < 2 || strcmp(argv[1], "selfsigned") != 0)
		return usage();
	optind = 1;
	argc--, argv++;
	while ((opt = getopt(argc, argv, "fd:")) != -1) {
		if (opt == 'f')
			force = true;
		else if (opt == 'd' && atoi(optarg) > 0)
			days = atoi(optarg);
		else
			return usage();
	}
	if (optind < argc)
		file = argv[optind++];
	if (optind < argc)
		return usage();
	diag_init(&d);
	sc = config_load_flags(config_dir, &d, CONFIG_BEST_EFFORT);
	if (sc == NULL || sc->main == NULL) {
		diag_print(&d, stderr);
		diag_free(&d);
		config_free(sc);
		return 1;
	}
	diag_free(&d);
	rc = selfsigned(sc->config_dir, sc->main, file, force, days);
	config_free(sc);
	return rc;
}
