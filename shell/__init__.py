"""The shell: the `spiral` command, its options and console output, the server's extra routes and auth, and
the HTML pages. It parses, calls and prints; the work happens in the rooms below."""
