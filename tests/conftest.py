pytest_plugins = ["engine.testing.pytest_plugin"]
