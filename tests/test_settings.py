"""PAINTBRUSH settings: defaults, overrides, and the reset on setting_changed."""

from __future__ import annotations

from django.test import SimpleTestCase, override_settings

from paintbrush.settings import DEFAULTS, pb_settings


class SettingsTests(SimpleTestCase):
    def test_defaults_apply_to_missing_keys(self) -> None:
        with override_settings(PAINTBRUSH={}):
            self.assertEqual(pb_settings.MAX_FRAME_BYTES, 64 * 1024)
            self.assertEqual(pb_settings.DOC_COALESCE_SECONDS, DEFAULTS["DOC_COALESCE_SECONDS"])

    def test_override_settings_is_seen_and_undone(self) -> None:
        before = pb_settings.MAX_FRAME_BYTES
        with override_settings(PAINTBRUSH={"MAX_FRAME_BYTES": 10}):
            self.assertEqual(pb_settings.MAX_FRAME_BYTES, 10)
        self.assertEqual(pb_settings.MAX_FRAME_BYTES, before)

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        with self.assertRaises(AttributeError):
            pb_settings.NOT_A_SETTING  # noqa: B018
