/* xml.c — escaping text for XML documents and property lists. */
#include "httpd/httpd.h"

size_t xml_char_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;
	unsigned cp, min;
	if (s[0] < 0x80)
		return s[0] >= 0x20 || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' ? 1 : 0;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	cp = s[0] & (0x7fu >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, U+FFFE/U+FFFF and beyond U+10FFFF are not XML */
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

void xml_escape(struct buf *out, const char *s)
{
	while (*s != '\0') {
		size_t n = xml_char_len(s);
		if (n == 0) {
			/* one '?' for the bad byte and the continuation bytes after it */
			buf_append_str(out, "?");
			s++;
			while (((unsigned char)*s & 0xc0) == 0x80)
				s++;
			continue;
		}
		if (n > 1) {
			buf_append(out, s, n);
			s += n;
			continue;
		}
		switch (*s) {
		case '&': buf_append_str(out, "&amp;"); break;
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&apos;"); break;
		default:
			buf_append(out, s, 1);
		}
		s++;
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
