"""A real Orthanc PACS with its DICOMweb plugin (Debian packages ``orthanc`` and ``orthanc-dicomweb``) for the tests.

:class:`OrthancServer` writes a configuration into a temporary folder, starts ``Orthanc`` on a free loopback HTTP
port (no DICOM port), waits until ``/system`` answers and stops the process on :meth:`stop`. HTTP basic
authentication is on, with the user :data:`USER` / :data:`PASSWORD`, so that the tests exercise the credential
settings; the DICOMweb root is ``/dicom-web``. :func:`orthanc_or_skip` skips with a clear reason only when the
packages are not installed (the README's test command installs them).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from kg.server import free_loopback_port

USER = "semgraph-test"
PASSWORD = "not-a-secret-pacs-password"
PLUGIN_FOLDERS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


def orthanc_binary() -> str | None:
    """Path of the Orthanc executable, or None."""
    return shutil.which("Orthanc") or (str(Path("/usr/sbin/Orthanc")) if Path("/usr/sbin/Orthanc").is_file() else None)


def dicomweb_plugin() -> str | None:
    """Path of Orthanc's DICOMweb plugin library, or None."""
    for folder in PLUGIN_FOLDERS:
        found = sorted(Path(folder).glob("libOrthancDicomWeb.so*")) if Path(folder).is_dir() else []
        if found:
            return str(found[0])
    return None


def orthanc_or_skip() -> tuple[str, str]:
    """(binary, plugin); skips the test when Debian's ``orthanc`` or ``orthanc-dicomweb`` is not installed."""
    binary, plugin = orthanc_binary(), dicomweb_plugin()
    if binary is None or plugin is None:
        pytest.skip("Orthanc with its DICOMweb plugin is not installed "
                    "(apt-get install orthanc orthanc-dicomweb; the README's test command does it)")
    return binary, plugin


class OrthancServer:
    """Orthanc on ``http://127.0.0.1:PORT`` over a fresh storage folder; ``dicomweb_url`` is its DICOMweb root."""

    def __init__(self, folder: Path, *, start_timeout: float = 60.0):
        binary, plugin = orthanc_or_skip()
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb_url = f"{self.url}/dicom-web"
        self.auth = (USER, PASSWORD)
        config = {
            "Name": "semgraph-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "storage"),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "DicomServerEnabled": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
            "StableAge": 1,
        }
        config_file = folder / "orthanc.json"
        config_file.write_text(json.dumps(config, indent=2))
        self.log = folder / "orthanc.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([binary, str(config_file)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with status {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if requests.get(f"{self.url}/system", auth=self.auth, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Orthanc did not answer within {start_timeout} s:\n{self.log.read_text()}")
            time.sleep(0.2)

    def upload(self, path: Path) -> dict:
        """Store one DICOM file through Orthanc's REST API; returns Orthanc's answer (ids of the new instance)."""
        answer = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), auth=self.auth, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def clear(self) -> None:
        """Delete every patient (and so every study, series and instance)."""
        for patient in requests.get(f"{self.url}/patients", auth=self.auth, timeout=30).json():
            requests.delete(f"{self.url}/patients/{patient}", auth=self.auth, timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
