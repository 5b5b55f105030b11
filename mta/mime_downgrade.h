/*
 * mime_downgrade.h - 8-bit to 7-bit MIME conversion of a message on its
 * way to an SMTP server that does not announce 8BITMIME, as Postfix's
 * mime_state(3) with MIME_OPT_DOWNGRADE does it (mime_downgrade.c).
 *
 * The rules, Postfix's:
 *   - a leaf part (text/..., application/..., or no Content-Type) whose
 *     Content-Transfer-Encoding is 8bit or binary is sent
 *     quoted-printable: its Content-Transfer-Encoding header is dropped
 *     and "Content-Transfer-Encoding: quoted-printable" is written at the
 *     end of its header block; its lines are encoded (bytes below 32 but
 *     TAB, "=" and bytes above 126 as =XX, a soft line break "=" before
 *     an output line grows past 73 columns, a space or TAB at a line's
 *     end encoded);
 *   - a multipart/... or message/... part declared 8bit or binary is
 *     declared "7bit" instead (its insides are converted one by one);
 *   - everything else passes byte for byte: a part without a
 *     Content-Transfer-Encoding header, or declared 7bit, quoted-printable
 *     or base64, is not touched, even when it holds 8-bit bytes (Postfix
 *     sends those as they are);
 *   - message/rfc822 parts are parsed as messages; message/partial and
 *     message/external-body are not; multipart/digest parts default to
 *     message/rfc822.
 *
 * The input is the message as the queue holds it (LF line ends, no dot
 * stuffing), in pieces of any size; the output goes, in pieces, to the
 * caller's function, also with LF line ends.  Memory is bounded: a header
 * is kept up to MIME_DG_HEADER_MAX bytes (longer: passed on unparsed),
 * boundaries up to MIME_DG_BOUNDARY_MAX bytes (Postfix's
 * mime_boundary_length_limit), nesting up to MIME_DG_DEPTH_MAX levels
 * (mime_nesting_limit); body lines are never kept whole.
 */
#ifndef SLUICE_MIME_DOWNGRADE_H
#define SLUICE_MIME_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_DG_HEADER_MAX      102400  /* header_size_limit's default */
#define MIME_DG_BOUNDARY_MAX    2048    /* mime_boundary_length_limit */
#define MIME_DG_DEPTH_MAX       100     /* mime_nesting_limit */

typedef void (*mime_dg_out_fn)(void *arg, const char *p, size_t n);

struct mime_dg;

/* A converter writing its output through out(arg, ...). */
struct mime_dg *mime_dg_new(mime_dg_out_fn out, void *arg);
/* Convert the next n bytes of the message. */
void mime_dg_update(struct mime_dg *m, const char *p, size_t n);
/* The end of the message: flush what is held (a last line without LF
 * comes out without LF, as it came in). */
void mime_dg_finish(struct mime_dg *m);
/* Did the conversion change anything (a part was re-encoded)? */
bool mime_dg_changed(const struct mime_dg *m);
void mime_dg_free(struct mime_dg *m);

#endif
