from catalog_compiler.cli import main

main()
