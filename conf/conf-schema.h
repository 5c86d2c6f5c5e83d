/* conf-schema.h — private to conf/: the table that declares every config key.
 *
 * One table drives the libConfuse option arrays, the per-value validation (with
 * file:line errors), the copy into the snapshot structs, and the generated
 * configuration reference (docs/config-reference.md).
 */
#ifndef WARREN_CONF_SCHEMA_H
#define WARREN_CONF_SCHEMA_H

#include <stddef.h>

enum conf_key_type {
	KEY_STR,        /* free text */
	KEY_PATH,       /* file name; relative to the folder of the file it is written in */
	KEY_INT,        /* integer within [min, max] */
	KEY_BOOL,       /* yes/no, true/false, on/off */
	KEY_SIZE,       /* bytes with an optional k/M/G suffix: "50M" */
	KEY_DURATION,   /* seconds with an optional s/m/h/d suffix: "5m" */
	KEY_DURATION_MS,/* milliseconds with an optional ms/s/m suffix: "500ms" */
	KEY_ENUM,       /* one of choices */
	KEY_STRLIST,    /* { "a", "b" } */
	KEY_HASH,       /* a crypt(3) password hash */
};

struct conf_section_def;

struct conf_key_def {
	const char *name;
	enum conf_key_type type;
	const char *def;                /* default, written as in the config; NULL: unset */
	long long min, max;             /* bounds for INT, SIZE, DURATION(_MS) */
	const char *const *choices;     /* KEY_ENUM: NULL-terminated names, index = value */
	size_t offset;                  /* field in the section's struct */
	const char *doc;
	const struct conf_section_def *section; /* non-NULL: this entry is a sub-block */
};

enum {
	SECTION_MULTI = 0x1,            /* may appear many times, with a title */
	SECTION_OVERRIDE = 0x2,         /* a domain's override of a global section: keys
					 * it does not set keep the global value (conf.c
					 * copy_override, not copy_keys) */
};

struct conf_section_def {
	const char *name;
	unsigned flags;
	const char *title_doc;          /* what the title means, for SECTION_MULTI */
	const char *doc;
	const struct conf_key_def *keys;    /* terminated by name == NULL */
};

extern const struct conf_section_def conf_root_section;

#endif
