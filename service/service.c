int service_placeholder_(void); int service_placeholder_(void) { return 0; }
