/* conf-reference.c — the configuration reference, written from the schema. */
#include "conf/conf.h"
#include "conf/conf-schema.h"

#include <stdio.h>

static const char *type_name(const struct conf_key_def *k)
{
	switch (k->type) {
	case KEY_STR: return "text";
	case KEY_PATH: return "file";
	case KEY_INT: return "number";
	case KEY_BOOL: return "yes/no";
	case KEY_SIZE: return "size";
	case KEY_DURATION: return "duration";
	case KEY_DURATION_MS: return "duration";
	case KEY_ENUM: return "choice";
	case KEY_STRLIST: return "list";
	case KEY_HASH: return "password hash";
	}
	return "?";
}

static void write_section(FILE *out, const struct conf_section_def *sec, const char *path)
{
	fprintf(out, "\n## `%s`\n\n%s\n", path, sec->doc);
	if (sec->flags & SECTION_MULTI)
		fprintf(out, "\nMay appear many times; its title is %s.\n", sec->title_doc);
	fprintf(out, "\n| key | type | default | meaning |\n|---|---|---|---|\n");
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++) {
		if (k->section != NULL)
			continue;
		char def[128];
		if (k->def == NULL && (sec->flags & SECTION_OVERRIDE))
			snprintf(def, sizeof(def), "%s", k->type == KEY_STRLIST ? "(unset)" :
				 "(the global one)");
		else if (k->def == NULL)
			snprintf(def, sizeof(def), "%s", k->type == KEY_INT || k->type == KEY_ENUM ?
				 "(required)" : "(unset)");
		else if (k->def[0] == '\0')
			snprintf(def, sizeof(def), "\"\"");
		else
			snprintf(def, sizeof(def), "`%s`", k->def);
		fprintf(out, "| `%s` | %s", k->name, type_name(k));
		if (k->type == KEY_ENUM) {
			fprintf(out, ": ");
			for (int i = 0; k->choices[i] != NULL; i++)
				fprintf(out, "%s%s", i == 0 ? "" : ", ", k->choices[i]);
		}
		if ((k->type == KEY_INT) && (k->min != 0 || k->max != 0))
			fprintf(out, " (%lld–%lld)", k->min, k->max);
		fprintf(out, " | %s | %s |\n", def, k->doc);
	}
	for (const struct conf_key_def *k = sec->keys; k->name != NULL; k++) {
		if (k->section == NULL)
			continue;
		char sub[256];
		if (sec == &conf_root_section)
			snprintf(sub, sizeof(sub), "%s%s", k->name,
				 (k->section->flags & SECTION_MULTI) ? " TITLE { }" : " { }");
		else
			snprintf(sub, sizeof(sub), "%s → %s%s", path, k->name,
				 (k->section->flags & SECTION_MULTI) ? " TITLE { }" : " { }");
		write_section(out, k->section, sub);
	}
}

void conf_write_reference(FILE *out)
{
	fprintf(out, "# Configuration reference\n\n"
		"Generated from the schema in `conf/conf-schema.c` by `warrenctl config-reference`;\n"
		"a test checks that this file matches it.\n\n"
		"Sizes take k, M, G suffixes (powers of 1024); durations take ms, s, m, h, d.\n"
		"Relative file names are relative to the folder of the file they are written in.\n");
	write_section(out, &conf_root_section, "(top level)");
}
