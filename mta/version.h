/*
 * version.h - sluice's version and mail_name.
 */
#ifndef SLUICE_VERSION_H
#define SLUICE_VERSION_H
#define SLUICE_VERSION "0.1.0"
#define SLUICE_MAIL_NAME "sluice"
#endif
