-- A small shop to explore with the postgres_db tools, valid in both SQLite and PostgreSQL.
-- `python -m tools.postgres_db --demo` loads it into an in-memory SQLite database; the compose file loads it into
-- PostgreSQL's `demo` database (configs/postgres/init-demo.sh). It holds no Toolhub data.

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT,
    signed_up DATE NOT NULL
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price NUMERIC(10, 2) NOT NULL CHECK (price >= 0)
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    ordered_on DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'refunded'))
);

CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

INSERT INTO customers (id, name, email, country, signed_up) VALUES
    (1, 'Ada Lovelace', 'ada@example.com', 'GB', '2024-01-05'),
    (2, 'Grace Hopper', 'grace@example.com', 'US', '2024-01-19'),
    (3, 'Alan Turing', 'alan@example.com', 'GB', '2024-02-02'),
    (4, 'Katherine Johnson', 'katherine@example.com', 'US', '2024-02-14'),
    (5, 'Edsger Dijkstra', 'edsger@example.com', 'NL', '2024-03-01'),
    (6, 'Hedy Lamarr', 'hedy@example.com', 'AT', '2024-03-22'),
    (7, 'Linus Torvalds', 'linus@example.com', 'FI', '2024-04-10'),
    (8, 'Margaret Hamilton', 'margaret@example.com', NULL, '2024-05-06');

INSERT INTO products (id, name, category, price) VALUES
    (1, 'Mechanical keyboard', 'hardware', 89.00),
    (2, 'Ergonomic mouse', 'hardware', 39.50),
    (3, '27-inch monitor', 'hardware', 249.99),
    (4, 'USB-C hub', 'hardware', 24.90),
    (5, 'Desk lamp', 'office', 31.00),
    (6, 'Notebook (dotted)', 'office', 7.50),
    (7, 'Fountain pen', 'office', 45.00),
    (8, 'Standing desk', 'furniture', 429.00),
    (9, 'Office chair', 'furniture', 199.00),
    (10, 'Headphones', 'hardware', 129.00);

INSERT INTO orders (id, customer_id, ordered_on, status) VALUES
    (1, 6, '2024-06-13', 'shipped'),
    (2, 2, '2024-07-19', 'new'),
    (3, 4, '2024-05-18', 'shipped'),
    (4, 4, '2024-10-21', 'shipped'),
    (5, 7, '2024-05-08', 'new'),
    (6, 5, '2024-09-27', 'shipped'),
    (7, 4, '2024-07-04', 'shipped'),
    (8, 6, '2024-08-19', 'shipped'),
    (9, 2, '2024-09-10', 'shipped'),
    (10, 2, '2024-05-17', 'shipped'),
    (11, 8, '2024-08-02', 'shipped'),
    (12, 6, '2024-07-23', 'paid'),
    (13, 2, '2024-05-24', 'shipped'),
    (14, 6, '2024-05-15', 'paid'),
    (15, 8, '2024-05-07', 'refunded'),
    (16, 8, '2024-05-06', 'shipped'),
    (17, 5, '2024-10-14', 'paid'),
    (18, 4, '2024-10-08', 'new'),
    (19, 1, '2024-06-14', 'shipped'),
    (20, 1, '2024-08-28', 'refunded'),
    (21, 8, '2024-10-13', 'new'),
    (22, 8, '2024-06-04', 'paid'),
    (23, 2, '2024-07-20', 'new'),
    (24, 7, '2024-06-21', 'paid');

INSERT INTO order_items (order_id, product_id, quantity) VALUES
    (1, 2, 3),
    (2, 1, 2),
    (2, 2, 2),
    (2, 4, 1),
    (3, 10, 1),
    (4, 10, 3),
    (5, 3, 1),
    (5, 5, 3),
    (5, 7, 1),
    (6, 2, 3),
    (7, 1, 2),
    (7, 2, 3),
    (7, 4, 2),
    (8, 4, 1),
    (8, 5, 1),
    (9, 6, 1),
    (9, 8, 3),
    (10, 6, 1),
    (11, 9, 3),
    (12, 2, 1),
    (12, 8, 1),
    (12, 10, 2),
    (13, 8, 1),
    (13, 10, 2),
    (14, 10, 1),
    (15, 3, 2),
    (15, 4, 2),
    (16, 5, 1),
    (16, 9, 2),
    (17, 3, 1),
    (17, 4, 1),
    (17, 7, 1),
    (18, 3, 1),
    (18, 10, 1),
    (19, 6, 1),
    (19, 10, 3),
    (20, 7, 2),
    (20, 9, 2),
    (20, 10, 1),
    (21, 2, 1),
    (22, 1, 3),
    (22, 2, 1),
    (22, 10, 3),
    (23, 4, 3),
    (24, 6, 2),
    (24, 10, 1);
