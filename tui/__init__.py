"""skydeck's operator console (Textual). It talks to the backend only."""
