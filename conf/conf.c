int conf_placeholder_(void); int conf_placeholder_(void) { return 0; }
