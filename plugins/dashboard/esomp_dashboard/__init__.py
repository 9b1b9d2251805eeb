"""E-SOMP dashboard: the wall screen (清算投屏), the job monitor and alerts, served by `esomp serve`."""
