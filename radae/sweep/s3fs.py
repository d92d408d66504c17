"""A pyarrow S3 filesystem whose pickle holds no credential.

Ray pickles the ``storage_filesystem`` of a Tuner or TorchTrainer into its experiment state, which
it writes to the bucket, and ships it to every trial and Train worker. A plain
``pyarrow.fs.S3FileSystem`` built with ``access_key``/``secret_key`` pickles them too.
:class:`SettingsS3FileSystem` pickles only the public storage settings (endpoint, bucket, prefix,
region); wherever it is unpickled it reads the credentials again from that process's environment
(``RADAE_S3_*``, else ``AWS_*``; :meth:`radae.sweep.settings.StorageSettings.from_env`).
"""

from __future__ import annotations

from typing import Any

from pyarrow import fs


class SettingsS3FileSystem(fs.S3FileSystem):
    """``S3FileSystem`` of a :class:`~radae.sweep.settings.StorageSettings`; pickles without secrets."""

    def __init__(self, settings: Any) -> None:
        super().__init__(**settings.pyarrow_kwargs())
        # The settings' class travels by reference (its module path), so this module needs no import
        # of radae.sweep.settings, which imports it: no cycle.
        self._settings_type = type(settings)
        self._public = settings.public()

    def __reduce__(self):
        return _from_environment, (self._settings_type, self._public)


def _from_environment(settings_type: Any, public: dict[str, Any]) -> SettingsS3FileSystem:
    """Unpickle: the public settings plus the credentials of this process's environment (``settings_type.from_env``)."""
    return SettingsS3FileSystem(settings_type.from_env(**public))
