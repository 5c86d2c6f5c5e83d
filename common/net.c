int net_placeholder_(void); int net_placeholder_(void) { return 0; }
