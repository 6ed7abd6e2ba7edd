from fewshot_apps.cli import main

raise SystemExit(main())
