"""The lowest layer: guards for what cotforge does not trust (names, text and files from outside) and for files
other runs trust (atomic writes, one writer per directory, secrets kept out of what is stored or printed).
Nothing here imports the rest of cotforge."""
