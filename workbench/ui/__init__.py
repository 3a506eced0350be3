"""The desktop app: PySide6 widgets over the core. The core never imports this package."""
