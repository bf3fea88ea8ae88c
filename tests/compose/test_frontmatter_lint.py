"""The editor's pasted-in mistakes, through the real `newsletter check` (and build): every one
listed at once, each at its own line of the draft, with a hint in plain words; exit 1, no
traceback."""

from __future__ import annotations

import re
from pathlib import Path

NOW = "2026-11-01T08:00"
BODY = "Welcome to the test issue.\n\n## Trademarks\n\nRegister before you ship.\n"


def write(project, text: str | bytes, issue: str = "2026-11") -> Path:  # noqa: ANN001
    path = project.issues / f"{issue}.md"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def error_lines(out: str, path: Path) -> dict[int, str]:
    """{line: message} of every `PATH:LINE: error: ...` line check printed."""
    found = {}
    for line in out.splitlines():
        if match := re.match(rf"{re.escape(str(path))}:(\d+): error: (.*)", line):
            assert int(match[1]) not in found, f"two errors on line {match[1]}:\n{out}"
            found[int(match[1])] = match[2]
    return found


def warning_lines(out: str, path: Path) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(
        rf"^{re.escape(str(path))}:(\d+): warning: (.*)$", out, re.MULTILINE)}


FOUR_PROBLEMS = (
    "---\n"
    "subject: Tip: register your mark early\n"  # 2: an unquoted ': '
    'preheader: "What it costs, and where"\n'
    "status:\u00a0ready\n"  # 4: a non-breaking space from Word
    "feeds:\n"
    "\t- news\n"  # 6: a tab
    "send_at: 06/11/2026 09:00\n"  # 7: not ISO 8601
    "---\n" + BODY)


def test_four_different_front_matter_problems_are_four_errors_each_at_its_line(project):
    path = write(project, FOUR_PROBLEMS)
    result = project.cli("check", "2026-11", "--now", NOW)
    assert result.code == 1
    errors = error_lines(result.out, path)
    assert sorted(errors) == [2, 4, 6, 7], result.out
    assert "put the subject in quotes" in errors[2]
    assert 'subject: "Tip: register your mark early"' in errors[2]
    assert "a non-breaking space (U+00A0) at column 8" in errors[4]
    assert "a tab at column 1" in errors[6] and "use spaces" in errors[6]
    assert "'06/11/2026 09:00'" in errors[7] and "send_at: 2027-01-06T09:00" in errors[7]
    assert "Europe/Zurich" in errors[7]  # the zone a time without an offset is read in
    assert result.out.splitlines()[-1] == "check 2026-11.md: 4 error(s), 0 warning(s)"


def test_the_installed_command_lists_them_with_no_traceback(project, newsletter_script):
    path = write(project, FOUR_PROBLEMS)
    done = newsletter_script("--config", str(project.config_path), "check", "2026-11",
                             cwd=project.root)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert sorted(error_lines(done.stdout, path)) == [2, 4, 6, 7]


def test_build_refuses_the_draft_naming_every_problem(project):
    path = write(project, FOUR_PROBLEMS)
    result = project.cli("build", "2026-11", "--no-screenshots")
    assert result.code == 2
    lines = result.err.splitlines()
    assert [int(re.match(rf"newsletter: {re.escape(str(path))}: line (\d+): ", line)[1])
            for line in lines] == [2, 4, 6, 7]


def test_a_yaml_error_is_named_at_the_line_that_opened_it_and_the_rest_still_checked(project):
    path = write(project, '---\nsubject: Hi\npreheader: "never closed\nstatus: sent\n'
                          "colour: blue\n---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert sorted(errors) == [3, 4, 5]
    assert "not valid YAML" in errors[3] and "never closed" in errors[3]
    assert "'status' must be one of draft, ready" in errors[4]
    assert "'colour' is not a known key" in errors[5]


def test_a_line_yaml_stops_at_is_the_line_itself_not_the_next(project):
    path = write(project, "---\nsubject: Hi\n  status: ready\nfeeds: [news]\n---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert list(errors) == [3] and "not valid YAML" in errors[3]


def test_a_draft_that_is_not_utf8_names_its_first_bad_line_and_says_save_as_utf8(project):
    # UTF-8 front matter, then a body pasted in as Latin-1 (an editor's other program)
    data = FOUR_PROBLEMS.encode("utf-8") + "Enregistrez la marque.\nCaf\u00e9 cr\u00e8me.\n" \
        "Other caf\u00e9.\n".encode("latin-1")
    path = write(project, data)
    byte = data.index(b"\xe9")
    bad_line = data[:byte].count(b"\n") + 1
    result = project.cli("check", "2026-11", "--now", NOW)
    assert result.code == 1
    assert (f"{path}: error: not UTF-8 text (byte {byte}) on line {bad_line}; "
            "1 more line(s) too: save the file as UTF-8") in result.out
    # the rest of the draft is still read: the four front-matter problems are listed too
    assert sorted(error_lines(result.out, path)) == [2, 4, 6, 7]


def test_a_utf8_bom_is_fine(project):
    path = write(project, b"\xef\xbb\xbf" + ("---\nsubject: \"Hi\"\nstatus: ready\n---\n"
                                             + BODY).encode("utf-8"))
    result = project.cli("check", "2026-11", "--now", NOW)
    assert "UTF-8" not in result.out
    assert error_lines(result.out, path).keys() <= {0}  # only the missing snapshot, no line
    assert project.load_draft().subject == "Hi"


def test_curly_quotes_inside_straight_quotes_are_text_but_as_the_quotes_an_error(project):
    path = write(project, "---\n"
                          'subject: "The \u201cbest\u201d of the month"\n'
                          "preheader: \u201cWhat it costs\u201d\n"
                          "exclude: [\u2018https://example.org/old\u2019]\n"
                          "---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert sorted(errors) == [3, 4]
    assert "a curly quote \u201c (U+201C) at column 12 quotes the value" in errors[3]
    assert 'preheader: "\u201c...\u201d"' in errors[3]  # how to keep them as text
    assert "a curly quote \u2018 (U+2018) at column 11" in errors[4]


def test_a_curly_quoted_key_is_named_in_the_key(project):
    path = write(project, "---\n\u201csubject\u201d: Hello\n---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert list(errors) == [2]  # not also "'subject' is missing" or "not a known key"
    assert "a curly quote \u201c (U+201C) at column 1 in the key" in errors[2]


def test_spaces_typography_needs_in_a_value_are_fine_but_not_in_the_structure(project):
    path = write(project, "---\n"
                          "subject: Les nouvelles du mois\u202f!\n"  # French: a narrow NBSP
                          'preheader: "Co\u00fbts\u00a0: ce qu\'il faut savoir"\n'
                          "status\u202f: ready\n"
                          "feeds:\n"
                          "\u00a0 - news\n"
                          "---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert sorted(errors) == [4, 6]
    assert "a narrow non-breaking space (U+202F) at column 7, in the key" in errors[4]
    assert "a non-breaking space (U+00A0) at column 1" in errors[6]


def test_a_zero_width_space_is_an_error_in_a_key_and_a_warning_in_the_body(project):
    path = write(project, "---\nsub\u200bject: Hi\nfeeds: [news]\n---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert list(errors) == [2] and "a zero-width space (U+200B) at column 4" in errors[2]
    write(project, "---\nsubject: Hi\n---\nIntro.\n\nSee https://exam\u200bple.org\n")
    out = project.cli("check", "2026-11", "--now", NOW).out
    assert "a zero-width space (U+200B) at column 17" in warning_lines(out, path)[6]


def test_a_hash_in_an_unquoted_subject_would_cut_it_short(project):
    path = write(project, "---\nsubject: We are #1 in trademarks\n---\n" + BODY)
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert "as the start of a comment" in errors[2]
    assert 'subject: "We are #1 in trademarks"' in errors[2]


def test_plain_values_with_colons_inside_words_or_quotes_pass(project):
    path = write(project, "---\n"
                          "subject: \"Tip: register early\"\n"
                          "preheader: 'Meet at 10:30, it''s free'\n"
                          "status: ready\n"
                          "send_at: 2026-11-05T09:00\n"
                          "feeds: [news, events]\n"
                          "translated_from:\n"
                          '  "Case study: one valley": "d8aa8504d0da"\n'
                          "---\n" + BODY)
    out = project.cli("check", "2026-11", "--now", NOW).out
    assert not [n for n in error_lines(out, path) if n], out


def test_template_hints_left_in_a_ready_draft_are_errors_read_from_the_template(project):
    # The editors' own template: its sentences are the hints, none written into the code.
    (project.issues / "_template.md").write_text(
        "---\nsubject: \"\"\nstatus: draft\nsend_at: SEND_AT\n---\n\n"
        "Say in one sentence which webinar this month is about.\n\n"
        "## Your heading here\n\n"
        "Two short paragraphs at most, with a link to the recording page for members.\n",
        encoding="utf-8")
    path = write(project, "---\nsubject: Webinars\nstatus: ready\n---\n"
                          "Say in one sentence which webinar\nthis month is about.\n\n"
                          "## Trademarks\n\nOur own words.\n\n"
                          "Two short paragraphs at most, with a link to the recording page for "
                          "members. See https://example.org.\n\n"
                          "## Your heading here\n")
    result = project.cli("check", "2026-11", "--now", NOW)
    assert result.code == 1
    errors = error_lines(result.out, path)
    assert "the template's hint text 'Say in one sentence which webinar this month is " \
           "about.' is still in the draft" in errors[5]
    assert "'Two short paragraphs at most" in errors[12]  # kept, with words added after it
    assert "'Your heading here'" in errors[14]
    assert "Our own words" not in result.out


def test_template_hints_in_a_draft_not_yet_ready_are_warnings(project):
    template = (project.issues / "_template.md").read_text(encoding="utf-8")
    path = write(project, template.replace('subject: ""', "subject: Soon")
                 .replace("SEND_AT", "2026-11-05T09:00"))
    out = project.cli("check", "2026-11", "--now", NOW).out
    warnings = warning_lines(out, path)
    hints = [n for n, text in warnings.items() if "the template's hint text" in text]
    body_start = template.split("\n").index("---", 1) + 2
    assert len(hints) == 5 and min(hints) > body_start  # intro, 2 headings, 2 hints
    assert not [n for n, text in error_lines(out, path).items() if "hint" in text]


def test_word_bullets_become_a_list_and_check_says_where(project):
    path = write(project, "---\nsubject: Hi\nstatus: ready\n---\n"
                          "What to check:\n"
                          "\u2022\tthe markets\n"
                          "\t\u25e6\tand their classes\n"
                          "\u2022  the goods\n"
                          "After the list.\n\n"
                          "```\n\u2022\tin code it stays\n```\n")
    html = project.load_draft().sections[0].html
    assert re.search(r"<p>What to check:</p>\s*<ul>\s*<li>the markets\s*<ul>\s*"
                     r"<li>and their classes</li>\s*</ul>\s*</li>\s*<li>the goods</li>\s*</ul>"
                     r"\s*<p>After the list.</p>", html), html
    assert re.search(r"<pre><code>\u2022\s+in code it stays", html), html
    out = project.cli("check", "2026-11", "--now", NOW).out
    warnings = warning_lines(out, path)
    assert "3 line(s) start with a Word-style bullet '\u2022'" in warnings[6]
    assert 12 not in warnings  # the fenced one is code, not a list


def test_the_text_of_a_block_scalar_is_text_and_windows_line_ends_keep_the_lines(project):
    path = write(project, "---\r\nsubject: Hi\r\npreheader: >-\r\n  Tip: costs #1 abroad\r\n"
                          "  and here\r\n# a note: for us\r\nstatus:\tready\r\n---\r\n"
                          + BODY.replace("\n", "\r\n"))
    errors = error_lines(project.cli("check", "2026-11", "--now", NOW).out, path)
    assert sorted(errors) == [7] and "a tab at column 8" in errors[7]


def test_send_refuses_a_ready_issue_that_still_holds_a_template_hint(project):
    template = (project.issues / "_template.md").read_text(encoding="utf-8")
    intro = template.split("---\n", 2)[2].strip().split("\n\n")[0]
    write(project, "---\nsubject: Hi\nstatus: ready\nsend_at: 2026-11-05T09:00\n---\n"
                   f"{intro}\n\n## Trademarks\n\nOur own words.\n")
    assert project.cli("pull", "2026-11", "--now", NOW).code == 0
    result = project.cli("send", "2026-11", "--dry-run", "--now", "2026-11-05T10:00")
    assert result.code == 1
    assert "would refuse 2026-11" in result.out + result.err
    write(project, "---\nsubject: Hi\nstatus: ready\nsend_at: 2026-11-05T09:00\n---\n"
                   "Our intro.\n\n## Trademarks\n\nOur own words.\n")
    assert project.cli("send", "2026-11", "--dry-run", "--now", "2026-11-05T10:00").code == 0


def test_a_comment_written_on_purpose_is_no_problem(project):
    path = write(project, "---\nsubject: Hello  # note: say it better\n"
                          "send_at: 2026-11-05T09:00 # Zurich time\n---\n" + BODY)
    out = project.cli("check", "2026-11", "--now", NOW).out
    assert not [n for n in error_lines(out, path) if n], out
    assert project.load_draft().subject == "Hello"


def test_a_folded_block_subject_or_preheader_is_one_line_of_text(project) -> None:
    path = write(project, "---\nsubject: >\n  Exporting soon? Protect\n  your brand\n"
                          "preheader: >\n  Why to register first.\nstatus: draft\n---\n" + BODY)
    result = project.cli("check", "2026-11", "--now", NOW)
    assert "control character" not in result.out + result.err, result.out + result.err
    assert error_lines(result.out, path) == {}, result.out
