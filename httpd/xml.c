/* xml.c — escaping text for XML documents and property lists. */
#include "httpd/httpd.h"

void xml_escape(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': buf_append_str(out, "&amp;"); break;
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&apos;"); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				buf_append_str(out, "?");
			else
				buf_append(out, s, 1);
		}
	}
}

void plist_string(struct buf *out, const char *indent, const char *key, const char *value)
{
	buf_printf(out, "%s<key>", indent);
	xml_escape(out, key);
	buf_printf(out, "</key>\n%s<string>", indent);
	xml_escape(out, value);
	buf_append_str(out, "</string>\n");
}
