"""Job logging: everything a job prints, Python's and native code's, lands in its log file."""

import subprocess
import sys
import textwrap


def test_setup_sends_python_and_native_output_to_the_log(tmp_path):
    log = tmp_path / "logs" / "job.log"
    code = textwrap.dedent(
        f"""
        import logging, os, sys
        from carmask.logs import Progress, setup
        logger = setup({str(log)!r})
        print("python stdout")
        print("python stderr", file=sys.stderr)
        os.write(2, b"native stderr, like TensorFlow's oneDNN notice\\n")
        os.write(1, b"native stdout\\n")
        Progress(3, "done", logger, every_s=0).update(3)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # a quiet terminal
    text = log.read_text()
    for line in ("python stdout", "python stderr", "native stderr", "native stdout", "done: 3/3"):
        assert line in text
